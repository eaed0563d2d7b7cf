"""The built-in commands, in the order ``seqtool --help`` lists them.

Each entry says which flags fill which Config field; the work is in the module its ``run``
names (imported only when the command runs).
"""

from __future__ import annotations

from seqtool.commands.registry import Command, Flag, register_command
from seqtool.config import (
    AttendConfig, BpttConfig, CompareConfig, CompileConfig, EvaluateConfig, ExportConfig,
    PredictConfig,
    ReportConfig, RunConfig, SampleConfig, TrainConfig,
)

INPUT_HELP = (
    'A JSON (or YAML) object {"query": ..., "keys": ..., "values": ...} (other parameters by '
    "name too) from a file or - (stdin); flags override it."
)

# The flags attend and compare-selectors share: the inputs and the selectors' parameters.
ATTENTION_INPUTS = (
    Flag("query", ("--query", "-q"), "VECTOR|MATRIX"),
    Flag("keys", ("--keys", "-k"), "MATRIX"),
    Flag("values", ("--values", "-v"), "MATRIX"),
)
SELECTOR_PARAMS = (
    Flag("temperature", ("--temperature", "-t"), "T"),
    Flag("alpha", ("--alpha",), "ALPHA"),
    Flag("k", ("--k",), "K"),
    Flag("seed", ("--seed",), "INT"),
    Flag("hard", ("--hard",), kind="switch"),
    Flag("scale", ("--scale",), "1|sqrt|NUMBER"),
)

# The commands that split their work across cores (seqtool.core.parallel).
THREADS = Flag("threads", ("--threads",), "N")

register_command(Command(
    name="attend",
    plot="seqtool.render.plots.attend:plot",
    config=AttendConfig,
    run="seqtool.commands.attend:run",
    report="seqtool.core.attention:AttendReport",
    render="seqtool.render.attend:render_attend",
    explain="seqtool.render.explain:explain_attend",
    explain_help="Write the worked answer out: dot products, selection, weighted sum.",
    metrics="seqtool.commands.attend:metrics",
    short_help="Attention, any selector. e.g. seqtool attend --query 3,-1",
    help="""Attention of a query over keys and values with the selector of your choice.

scores = scale · q·k_i, weights = selector(scores), output = Σ_i weights_i v_i.
With no --keys, the built-in worked example is used: keys (1,5),(1,0),(1,3),(2,0) and
values (1,0,0),(0,1,0),(0,0,1),(6,1,2).""",
    examples=(
        "seqtool attend --query 3,-1 --selector argmax",
        "seqtool attend -q '3,-1;1,2' -k '1,5;1,0;1,3' --selector sparsemax --grad",
        "echo '{\"query\": [3,-1], \"keys\": [[1,5],[1,0]]}' | seqtool attend --input - --format json",
    ),
    flags=(
        *ATTENTION_INPUTS,
        Flag("selector", ("--selector", "-s"), "NAME"),
        *SELECTOR_PARAMS,
        Flag("grad", ("--grad",), kind="switch"),
        Flag("upstream", ("--upstream",), "VECTOR"),
    ),
    source=Flag("input", ("--input", "-i"), "FILE|-", help=INPUT_HELP),
))

register_command(Command(
    name="bptt",
    plot="seqtool.render.plots.bptt:plot",
    config=BpttConfig,
    run="seqtool.commands.bptt:run",
    report="seqtool.core.rnn.bptt:BpttReport",
    render="seqtool.render.bptt:render_any",
    explain="seqtool.render.explain_bptt:explain_bptt",
    explain_help="The chain rule written out with this run's numbers (T ≤ 6).",
    check_explain="seqtool.commands.bptt:check_explain",
    failure="seqtool.commands.bptt:failure",
    metrics="seqtool.commands.bptt:metrics",
    live="seqtool.render.progress:AnalysisProgress",
    short_help="BPTT laid open. e.g. seqtool bptt --steps 20 --radius 1.5",
    help="""Backpropagation through time of a vanilla RNN, GRU or LSTM, every gradient laid open.

h_t = f(W_xh x_t + W_hh h_{t-1} + b_h), y_t = W_hy h_t + b_y, L = Σ_t L_t.
Reports the loss, every gradient, each step's share of dL/dW_hh, ‖dL/dh_t‖, the Jacobian
norms ‖dh_T/dh_k‖ that vanish or explode, truncated BPTT and a finite-difference check.
--cell gru or lstm runs the same report through the gates (PyTorch's equations);
--cell rnn,gru,lstm puts the cells' gradient-norm decay side by side on one sequence.""",
    examples=(
        "seqtool bptt --steps 20 --radius 0.8            # vanishing gradients",
        "seqtool bptt --steps 20 --radius 1.5 --format json | jq .jacobian_norms",
        "seqtool bptt --problem examples/problem.yaml --check --truncate 3",
        "seqtool bptt --steps 3 --activation sigmoid --explain",
        "seqtool bptt --steps 30 --cell rnn,gru,lstm     # which cells keep gradients alive",
    ),
    source=Flag("problem", ("--problem", "-p"), "FILE|-",
                help="Problem as JSON or YAML: W_xh, W_hh, W_hy, b_h, b_y, h0, x, y (and "
                "settings by name); - reads stdin. Flags override it."),
    source_keys_checked=False,
    flags=(
        Flag("steps", ("--steps", "-T"), "T"),
        Flag("input_size", ("--input-size", "-D"), "D"),
        Flag("hidden", ("--hidden", "-H"), "H"),
        Flag("output_size", ("--output-size", "-O"), "O"),
        Flag("seed", ("--seed",), "INT"),
        Flag("radius", ("--radius", "-g"), "G"),
        Flag("activation", ("--activation", "-a"), "NAME"),
        Flag("loss", ("--loss",), "mse|cross_entropy"),
        Flag("target_at", ("--target-at",), "all|last"),
        Flag("truncate", ("--truncate", "-k"), "K"),
        Flag("cell", ("--cell", "-c"), "rnn|gru|lstm[,...]"),
        Flag("forget_bias", ("--forget-bias",), "B"),
        Flag("jacobian", ("--jacobian", "-J"), "T,K[;T,K]"),
        Flag("check", ("--check",), kind="switch"),
        THREADS,
    ),
))

register_command(Command(
    name="compare-selectors",
    plot="seqtool.render.plots.compare:plot",
    config=CompareConfig,
    run="seqtool.commands.compare:run",
    report="seqtool.core.compare:CompareReport",
    render="seqtool.render.compare:render_compare",
    explain="seqtool.render.explain_compare:explain_compare",
    explain_help="The trade-off in prose, every claim citing this run's numbers.",
    metrics="seqtool.commands.compare:metrics",
    live="seqtool.render.progress:LearnProgress",
    short_help="Side by side, e.g. seqtool compare-selectors --learn",
    help="""Selectors side by side: weights, outputs, entropy, support, gradients, cost, learning.

Takes the same inputs as attend (the worked example when none are given). --cost times
scores and selection as the number of keys grows; --learn trains W_q and W_k on
associative recall through each selector, which shows why argmax cannot learn them.""",
    examples=(
        "seqtool compare-selectors --query 3,-1",
        "seqtool compare-selectors -q 3,-1 --selectors softmax,argmax --cost --learn --explain",
        "seqtool compare-selectors -q 3,-1 --format json | jq '.rows[] | {selector, grad_norm_query}'",
    ),
    flags=(
        *ATTENTION_INPUTS,
        Flag("selectors", ("--selectors", "-s"), "A,B,..."),
        *SELECTOR_PARAMS,
        Flag("upstream", ("--upstream",), "VECTOR"),
        Flag("repeats", ("--repeats",), "N"),
        Flag("cost", ("--cost",), kind="switch"),
        Flag("sizes", ("--sizes",), "N,N,..."),
        Flag("dim", ("--dim",), "D"),
        Flag("learn", ("--learn",), kind="switch"),
        Flag("steps", ("--steps",), "N"),
        Flag("pairs", ("--pairs",), "N"),
        Flag("vocab", ("--vocab",), "V"),
        Flag("lr", ("--lr",), "LR"),
    ),
    source=Flag("input", ("--input", "-i"), "FILE|-", help=INPUT_HELP),
))

register_command(Command(
    name="train-rnn",
    plot="seqtool.render.plots.train:plot",
    config=TrainConfig,
    run="seqtool.commands.train:run",
    report="seqtool.commands.train:TrainReport",
    render="seqtool.render.train:render_summary",
    explain="seqtool.render.train:explanation",
    explain_help="The architecture as a diagram, and the measured dependency map "
    "‖∂y_t/∂x_s‖ of the trained model.",
    failure="seqtool.commands.train:failure",
    metrics="seqtool.commands.train:metrics",
    live="seqtool.render.train:TrainView",
    explain_runs=True,
    interruptible=True,
    streams=True,
    format_help="table: a row per epoch and a summary; jsonl: one JSON object per epoch as it "
    "ends; json: the summary; csv: the epochs. Default: table on a terminal, json piped.",
    short_help="Train RNN/GRU/LSTM. e.g. seqtool train-rnn --data parity",
    help="""Train a vanilla RNN, GRU or LSTM: classify (many-to-one), tag (one-way
many-to-many), lm (p(y_t | y_<t)), regress, or seq2seq (an encoder-decoder with global
attention, any selector), on a built-in set or your data.

Writes a run directory (--out): config.yaml, metrics.jsonl, model.npz/.json (the best
model, torch names and layouts) and last.npz/.json (for --resume). Ctrl-C saves a
checkpoint and prints the command that resumes it; a resumed run ends bit-identical to an
uninterrupted one.""",
    examples=(
        "seqtool train-rnn --data sentiment --cell gru --epochs 5",
        "seqtool train-rnn --data parity --seq-len 8 --cell lstm --hidden 32",
        "seqtool train-rnn --data dyck --cell lstm --format jsonl | jq .val_loss",
        "seqtool train-rnn --data examples/reviews.tsv --task classify --out runs/reviews --explain",
        "seqtool train-rnn --data reverse --score general --selector sparsemax --out runs/rev",
        "seqtool train-rnn --resume runs/reviews --epochs 20",
    ),
    flags=(
        Flag("data", ("--data", "-d"), "NAME|FILE"),
        Flag("task", ("--task",), "classify|tag|lm|regress|seq2seq"),
        Flag("val", ("--val",), "FILE"),
        Flag("val_fraction", ("--val-fraction",), "F"),
        Flag("tokenizer", ("--tokenizer",), "char|word"),
        Flag("max_len", ("--max-len",), "N"),
        Flag("samples", ("--samples",), "N"),
        Flag("seq_len", ("--seq-len",), "T"),
        Flag("delay", ("--delay",), "K"),
        Flag("cell", ("--cell", "-c"), "rnn|gru|lstm|bow"),
        Flag("hidden", ("--hidden", "-H"), "H"),
        Flag("layers", ("--layers", "-L"), "L"),
        Flag("embedding_dim", ("--embedding-dim",), "E"),
        Flag("dropout", ("--dropout",), "P"),
        Flag("bidirectional", ("--bidirectional",), kind="switch"),
        Flag("pool", ("--pool",), "last|mean|max|attention"),
        Flag("score", ("--score",), "dot|general|additive"),
        Flag("selector", ("--selector", "-s"), "NAME"),
        Flag("temperature", ("--temperature",), "T"),
        Flag("alpha", ("--alpha",), "A"),
        Flag("k", ("--k",), "K"),
        Flag("nonlinearity", ("--nonlinearity",), "tanh|relu"),
        Flag("dtype", ("--dtype",), "float32|float64"),
        Flag("optimizer", ("--optimizer",), "NAME"),
        Flag("lr", ("--lr",), "LR"),
        Flag("weight_decay", ("--weight-decay",), "WD"),
        Flag("clip_norm", ("--clip-norm",), "N"),
        Flag("batch_size", ("--batch-size", "-b"), "B"),
        Flag("epochs", ("--epochs", "-e"), "N"),
        Flag("steps", ("--steps",), "N"),
        Flag("patience", ("--patience",), "N"),
        Flag("seed", ("--seed",), "INT"),
        Flag("out", ("--out", "-o"), "DIR"),
        THREADS,
    ),
    options=(
        Flag("resume", ("--resume",), "DIR",
             help="Continue the run in DIR with its optimiser and position (--epochs, --steps, "
             "--patience and --threads may change)."),
    ),
))

register_command(Command(
    name="predict",
    config=PredictConfig,
    run="seqtool.commands.use:predict",
    report="seqtool.commands.use:PredictReport",
    render="seqtool.render.use:render_predictions",
    metrics="seqtool.commands.use:predict_metrics",
    streams=True,
    piped_default="jsonl",
    stdin_lines="text",
    explain="seqtool.render.use:predict_explanation",
    explain_help="seq2seq: each output's alignment over its source as a heatmap.",
    short_help="Label texts. e.g. seqtool predict runs/x --text 'not bad'",
    help="Label texts with a trained classify or tag model, or decode them with a seq2seq "
    "model (greedy, or --beam N) with the attention of each output token over the source: "
    "--text (repeatable) or one text per line on stdin; JSONL out, one object per text.",
    examples=(
        "seqtool predict runs/sentiment --text 'fun but far too long'",
        "cat reviews.txt | seqtool predict runs/sentiment | jq .label",
        "seqtool predict runs/rev --text 3141592 --beam 4 --explain",
    ),
    flags=(
        Flag("run", ("run",), "RUN_DIR", kind="argument"),
        Flag("text", ("--text", "-t"), kind="many"),
        Flag("beam", ("--beam",), "N"),
        THREADS,
    ),
))

register_command(Command(
    name="sample",
    config=SampleConfig,
    run="seqtool.commands.use:sample",
    report="seqtool.commands.use:SampleReport",
    render="seqtool.render.use:render_sample",
    metrics="seqtool.commands.use:sample_metrics",
    streams=True,
    precision=False,
    short_help="Draw from an LM. e.g. seqtool sample runs/x --length 40",
    help="Draw tokens from a trained language model, one at a time: token_{t+1} ~ "
    "softmax(y_t / temperature).",
    examples=(
        "seqtool sample runs/dyck --length 40 --temperature 0.8 --seed 3",
        "seqtool sample runs/dyck --prime '([' --temperature 0      # greedy, from a prefix",
    ),
    flags=(
        Flag("run", ("run",), "RUN_DIR", kind="argument"),
        Flag("length", ("--length", "-n"), "N"),
        Flag("temperature", ("--temperature", "-t"), "T"),
        Flag("prime", ("--prime", "-p"), "TEXT"),
        Flag("seed", ("--seed",), "INT"),
    ),
))

register_command(Command(
    name="evaluate",
    plot="seqtool.render.plots.evaluate:plot",
    config=EvaluateConfig,
    run="seqtool.commands.use:evaluate",
    report="seqtool.commands.use:EvaluateReport",
    render="seqtool.render.use:render_evaluation",
    metrics="seqtool.commands.use:evaluate_metrics",
    streams=True,
    short_help="Score a model. e.g. seqtool evaluate runs/x --data dyck",
    help="Score a trained model on a data file (the training format) or on a fresh draw of "
    "its built-in set: loss and accuracy, perplexity or mse.",
    examples=(
        "seqtool evaluate runs/reviews --data examples/test.tsv",
        "seqtool evaluate runs/parity --data parity --seed 7",
    ),
    flags=(
        Flag("run", ("run",), "RUN_DIR", kind="argument"),
        Flag("data", ("--data", "-d"), "FILE|NAME", required=True),
        Flag("seed", ("--seed",), "INT"),
        Flag("samples", ("--samples",), "N"),
        THREADS,
    ),
))

register_command(Command(
    name="run",
    plot="seqtool.render.plots.recipe:plot",
    check_plot="seqtool.commands.recipe:check_plot",
    config=RunConfig,
    run="seqtool.commands.recipe:run",
    report="seqtool.recipes.runner:RecipeReport",
    render="seqtool.render.recipes:render_run",
    failure="seqtool.commands.recipe:failure",
    live="seqtool.render.recipes:RunProgress",
    explain="seqtool.recipes.runner:explain_runs",
    explain_help="Each run's --explain too (runs whose command has one; the same as "
    "explain: true in their params).",
    explain_runs=True,
    recipes=False,
    short_help="Run recipes. e.g. seqtool run recipes/dyck-lm.yaml",
    help="""Run a YAML recipe: one command with its params, a sweep (grid × seeds), or steps.

Each run gets a directory under --out (default runs/<name>/) with its config, report and
status; summary.json and summary.csv hold mean ± std over seeds per grid point. A failed
run does not stop the others (exit 1 at the end); rerunning with the same --out skips the
runs already done with the same settings.""",
    examples=(
        "seqtool run recipes/vanishing-exploding.yaml",
        "seqtool run recipes/cells-on-sentiment.yaml --jobs 2 --set params.epochs=2",
        "seqtool run recipes/cells-on-sentiment.yaml --dry-run",
        "seqtool run recipes/bptt-sigmoid-worked.yaml --explain",
        "seqtool run sweep.yaml --scheduler tcp://10.0.0.5:8786 --format json | jq .summary",
    ),
    flags=(
        Flag("recipe", ("recipe",), "RECIPE", kind="argument"),
        Flag("out", ("--out", "-o"), "DIR"),
        Flag("jobs", ("--jobs", "-j"), "N", kind="int", minimum=1),
        Flag("scheduler", ("--scheduler",), "ADDRESS"),
        Flag("sets", ("--set",), "KEY.PATH=VALUE", kind="many"),
        Flag("dry_run", ("--dry-run",), kind="switch"),
    ),
))

register_command(Command(
    name="compile",
    config=CompileConfig,
    run="seqtool.commands.compile:run",
    report="seqtool.commands.compile:CompileReport",
    render="seqtool.render.compile:render_compile",
    metrics="seqtool.commands.compile:metrics",
    live="seqtool.render.progress:CompileProgress",
    recipes=False,
    precision=False,
    short_help="Compile every kernel now. e.g. seqtool compile",
    help="""Compile (or load from numba's cache) every RNN kernel for this machine up front:
each registered cell in float32 and float64, the layer as bptt runs it and the model path
of train-rnn, predict, sample and evaluate, one process per job on every core.

First, once per machine (or again with --retune), it measures which method computes the
recurrent layers' matrix products fastest for which shape here (register tiles, a blocked
loop, BLAS: ~10 s on an idle machine) and keeps the thresholds beside numba's cache, where
every later run reads them (SEQTOOL_TUNING_FILE names another file, or none).

Later first runs then load the kernels from the cache instead of compiling them. Reports
per cell and dtype the seconds it took and whether it compiled or only loaded.""",
    examples=(
        "seqtool compile",
        "seqtool compile --cells lstm --dtypes float32 --jobs 2",
    ),
    flags=(
        Flag("cells", ("--cells", "-c"), "CELL[,...]"),
        Flag("dtypes", ("--dtypes",), "float32|float64[,...]"),
        Flag("jobs", ("--jobs", "-j"), "N", kind="int", minimum=1),
        Flag("retune", ("--retune",), kind="switch"),
    ),
))

register_command(Command(
    name="export",
    config=ExportConfig,
    run="seqtool.commands.export:run",
    report="seqtool.commands.export:ExportReport",
    render="seqtool.render.export:render_export",
    failure="seqtool.commands.export:failure",
    metrics="seqtool.commands.export:metrics",
    precision=False,
    format_help="table: what was written and how it was checked; json or csv: the same as "
    "data. Default: table on a terminal, json when piped.",
    short_help="A trained model for torch or ONNX. e.g. seqtool export runs/x -o x.onnx",
    help="""Write a trained model as a TorchScript archive (--to torch, .pt: load it with
torch.jit.load, no seqtool needed) or an ONNX model (--to onnx, .onnx: ONNX's own RNN, GRU
and LSTM operators, for onnxruntime and every ONNX runtime). Every task exports: classify
(any pooling and selector), tag, lm, regress, and seq2seq (the teacher-forced decoder:
feed back the argmax to decode). Inputs are batch first and right-padded: ids (B, T) and
lengths (B,), or x (B, T, D) for regress, or src, src_lengths, tgt, tgt_lengths for
seq2seq; the file carries the vocabulary, the labels and the tokenizer rule as metadata
("seqtool.json" in the archive, the "seqtool" metadata entry in ONNX).

Before writing, the file is run in its own runtime on a sample batch and compared with
seqtool: a difference beyond 1e-4 (float32) or 1e-9 (float64), relative, fails with exit
1 and writes nothing. --no-check skips that. torch export needs PyTorch; ONNX needs
pip install 'seqtool[export]'.""",
    examples=(
        "seqtool export runs/sentiment -o sentiment.onnx",
        "seqtool export runs/rev --to torch -o rev.pt",
        "seqtool export runs/x -o x.onnx --format json | jq .max_error",
    ),
    flags=(
        Flag("run", ("run",), "RUN_DIR", kind="argument"),
        Flag("to", ("--to",), "torch|onnx"),
        Flag("out", ("--out", "-o"), "FILE"),
        Flag("no_check", ("--no-check",), kind="switch"),
    ),
))

register_command(Command(
    name="report",
    config=ReportConfig,
    run="seqtool.commands.report:run",
    report="seqtool.commands.report:PageReport",
    render="seqtool.render.plots.report:render_report",
    recipes=False,
    precision=False,
    format_help="table: where the page was written; json or csv: the same as data. "
    "Default: table on a terminal, json when piped.",
    short_help="One HTML page of a run or sweep. e.g. seqtool report runs/x -o x.html",
    help="""Write one self-contained HTML page (inline CSS and SVG, no script, nothing fetched)
with everything about a run or a sweep: its config, its metrics and every plot.

A sweep directory (seqtool run) gives the summary table (mean ± std over seeds per grid
point), the recipe's plot, and a section per run with its config, metrics and its
command's plot; a train-rnn run directory gives its config, every epoch and its training
plot. Needs matplotlib (pip install 'seqtool[plot]').""",
    examples=(
        "seqtool report runs/cells-on-sentiment -o cells.html",
        "seqtool report runs/reviews              # writes runs/reviews/report.html",
    ),
    flags=(
        Flag("run", ("run",), "RUN_OR_SWEEP_DIR", kind="argument"),
        Flag("out", ("--out", "-o"), "FILE.html"),
    ),
))
