// Command hsmd is the HSM daemon.
//
//	hsmd init  -config node.toml [-cluster-id ID] make a new store and domain key,
//	                                              for the first node of a new cluster
//	                                              (the ID is the node certificate's)
//	hsmd init  -config node.toml -join ADDR       prepare a node to join the cluster
//	                                              the node at ADDR belongs to
//	hsmd serve -config node.toml                  serve
//	hsmd unlock-user -config node.toml NAME       break-glass: unlock NAME through the
//	                                              running node, with its passphrase
//	hsmd version
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/openhsm/openhsm/hsmd"
	"github.com/openhsm/openhsm/pki"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: hsmd init -config FILE [-cluster-id ID | -join HOST:PORT] | hsmd serve -config FILE | hsmd unlock-user -config FILE NAME | hsmd version")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	config := fs.String("config", "", "node configuration file")
	clusterID := fs.String("cluster-id", "", "cluster id (init of a new cluster; default and only choice: the node certificate's)")
	join := fs.String("join", "", "address of a node of the cluster to join (init)")
	switch os.Args[1] {
	case "version":
		fmt.Println(hsmd.Version)
		return
	case "init", "serve", "unlock-user":
	default:
		usage()
	}
	fs.Parse(os.Args[2:])
	if *config == "" {
		usage()
	}
	cfg, err := hsmd.LoadConfig(*config)
	if err != nil {
		fail(err)
	}
	// Before any secret is read or unsealed: no core files, no ptrace, no swap.
	cfg.Harden()
	if os.Args[1] == "unlock-user" {
		if fs.NArg() != 1 {
			usage()
		}
		if err := hsmd.UnlockUser(cfg, fs.Arg(0)); err != nil {
			fail(err)
		}
		fmt.Printf("hsmd: unlocked %s on every node (through the log)\n", fs.Arg(0))
		return
	}
	if os.Args[1] == "init" {
		switch {
		case *clusterID != "" && *join != "":
			fail(fmt.Errorf("init takes -cluster-id or -join, not both"))
		case *join != "":
			if err := hsmd.InitJoin(cfg, *join); err != nil {
				fail(err)
			}
			fmt.Printf("hsmd: initialized %s to join the cluster of %s; start it, then run 'hsm cluster add-node'\n", cfg.DataDir, *join)
		default:
			if err := hsmd.Init(cfg, *clusterID); err != nil {
				fail(err)
			}
			id, err := pki.CertFileClusterID(cfg.Cert)
			if err != nil {
				fail(err)
			}
			fmt.Printf("hsmd: initialized %s for cluster %s\n", cfg.DataDir, id)
		}
		return
	}
	hsmd.LimitMemory()
	n, err := hsmd.Open(cfg)
	if err != nil {
		fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err = n.Serve(ctx)
	n.Close()
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "hsmd:", err)
	os.Exit(1)
}
