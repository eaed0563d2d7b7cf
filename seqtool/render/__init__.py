"""Drawing reports for people: Rich tables, bars and the --explain walk-throughs."""
