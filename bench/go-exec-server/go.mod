module alyx.dev/bench/go-exec-server

go 1.19
