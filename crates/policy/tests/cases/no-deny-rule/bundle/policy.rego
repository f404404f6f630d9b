package airlock

warn contains "only a warning" if true
