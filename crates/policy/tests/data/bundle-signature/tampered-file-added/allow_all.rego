package airlock.extra
