// Command server is chatgate's reference server.
//
//	go run ./examples/server                 # serve on 127.0.0.1:9527, data in ./data
//	go run ./examples/server keys create -name ci -app main
//	go run ./examples/server migrate -to postgres://...  # copy ./data into Postgres
//
// Flags override CHATGATE_* environment variables, which override the config file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/chatgate/chatgate/server"
)

// quietRedis drops go-redis's own log lines: it logs every failed dial,
// once per request while Redis is down, where chatgate logs each incident
// once (and counts it in /metrics).
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func main() {
	redis.SetLogger(quietRedis{})
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chatgate:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", os.Getenv("CHATGATE_ADDR"), "listen address (env CHATGATE_ADDR; default "+server.DefaultAddr+")")
	data := flag.String("data", os.Getenv("CHATGATE_DATA"), "data directory (env CHATGATE_DATA; default "+server.DefaultData+")")
	config := flag.String("config", os.Getenv("CHATGATE_CONFIG"), "YAML config file (env CHATGATE_CONFIG)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: server [flags]\n       server keys <create|import|list|revoke|rotate> [flags]\n       server migrate [-to DSN] [-force]\n\nflags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	cfg, err := server.LoadConfig(*config)
	if err != nil {
		return err
	}
	cfg.ApplyEnv(os.LookupEnv)
	if *addr != "" {
		cfg.Server.Addr = *addr
	}
	if *data != "" {
		cfg.Server.Data = *data
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch flag.Arg(0) {
	case "keys":
		return server.KeysCommand(ctx, cfg, flag.Args()[1:], os.Stdout)
	case "migrate":
		return server.MigrateCommand(ctx, cfg, flag.Args()[1:], os.Stdout)
	}
	if flag.NArg() > 0 {
		flag.Usage()
		return errors.New("unexpected argument " + flag.Arg(0))
	}
	// server.Run binds before it opens the data directory, so a busy port
	// neither creates a database nor prints an admin key.
	return server.Run(ctx, cfg)
}
