// stargz-grpc: the stargz snapshotter daemon for advisor's lab.
//
// Debian packages the stargz-snapshotter Go library but not its daemon
// (containerd-stargz-grpc), so the lab builds this small equivalent with
// Debian's golang-go in GOPATH mode. It deliberately avoids the library's
// `service` and `service/resolver` packages, which import the Kubernetes CRI
// API (v1alpha2) that Debian does not ship.
//
// What it serves:
//   - the containerd snapshotter gRPC API on a unix socket (proxy plugin "stargz");
//   - the Prometheus metrics the library registers, on a loopback HTTP address.
//
// Config (TOML): the library's fs/config keys at top level, plus
// `metrics_address` and `[[resolver.host."<host>".mirrors]]` like the upstream daemon.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/contrib/snapshotservice"
	"github.com/containerd/containerd/log"
	"github.com/containerd/containerd/reference"
	"github.com/containerd/containerd/remotes/docker"
	stargzfs "github.com/containerd/stargz-snapshotter/fs"
	fsconfig "github.com/containerd/stargz-snapshotter/fs/config"
	"github.com/containerd/stargz-snapshotter/fs/source"
	"github.com/containerd/stargz-snapshotter/snapshot"
	dockercliconfig "github.com/docker/cli/cli/config"
	rhttp "github.com/hashicorp/go-retryablehttp"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
)

const defaultRequestTimeoutSec = 30

type mirrorConfig struct {
	Host              string `toml:"host"`
	Insecure          bool   `toml:"insecure"`
	RequestTimeoutSec int    `toml:"request_timeout_sec"`
}

type hostConfig struct {
	Mirrors []mirrorConfig `toml:"mirrors"`
}

type resolverConfig struct {
	Host map[string]hostConfig `toml:"host"`
}

type daemonConfig struct {
	fsconfig.Config
	MetricsAddress string         `toml:"metrics_address"`
	Resolver       resolverConfig `toml:"resolver"`
}

// dockerConfigCreds reads credentials from the usual docker config
// (~/.docker/config.json or $DOCKER_CONFIG), like the upstream daemon's keychain.
func dockerConfigCreds(host string) (string, string, error) {
	cf, err := dockercliconfig.Load("")
	if err != nil {
		return "", "", nil
	}
	if host == "registry-1.docker.io" {
		host = "https://index.docker.io/v1/"
	}
	ac, err := cf.GetAuthConfig(host)
	if err != nil {
		return "", "", nil
	}
	if ac.IdentityToken != "" {
		return "", ac.IdentityToken, nil
	}
	return ac.Username, ac.Password, nil
}

// registryHosts mirrors resolver.RegistryHostsFromConfig: every host gets an
// HTTP client with a real transport and an authorizer (a RegistryHost without
// them panics on the first lazy mount).
func registryHosts(cfg resolverConfig) source.RegistryHosts {
	return func(ref reference.Spec) (hosts []docker.RegistryHost, _ error) {
		host := ref.Hostname()
		for _, h := range append(cfg.Host[host].Mirrors, mirrorConfig{Host: host}) {
			client := rhttp.NewClient()
			client.Logger = nil
			tr := client.StandardClient()
			if h.RequestTimeoutSec >= 0 {
				if h.RequestTimeoutSec == 0 {
					tr.Timeout = defaultRequestTimeoutSec * time.Second
				} else {
					tr.Timeout = time.Duration(h.RequestTimeoutSec) * time.Second
				}
			}
			rh := docker.RegistryHost{
				Client:       tr,
				Host:         h.Host,
				Scheme:       "https",
				Path:         "/v2",
				Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
				Authorizer: docker.NewDockerAuthorizer(
					docker.WithAuthClient(tr),
					docker.WithAuthCreds(dockerConfigCreds)),
			}
			if localhost, _ := docker.MatchLocalhost(rh.Host); localhost || h.Insecure {
				rh.Scheme = "http"
			}
			if rh.Host == "docker.io" {
				rh.Host = "registry-1.docker.io"
			}
			hosts = append(hosts, rh)
		}
		return hosts, nil
	}
}

func main() {
	address := flag.String("address", "/run/containerd-stargz-grpc/containerd-stargz-grpc.sock", "unix socket to serve the snapshotter API on")
	root := flag.String("root", "/var/lib/containerd-stargz-grpc", "state directory")
	configPath := flag.String("config", "", "TOML config file")
	logLevel := flag.String("log-level", "info", "log level (debug, info, warn, error)")
	cleanupOnExit := flag.Bool("cleanup-on-exit", false, "on exit, unmount and delete every snapshot (the root cannot be restored afterwards)")
	flag.Parse()

	lvl, err := logrus.ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stargz-grpc: bad --log-level %q: %v\n", *logLevel, err)
		os.Exit(1)
	}
	logrus.SetLevel(lvl)
	logrus.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	ctx := log.WithLogger(context.Background(), log.L)

	var cfg daemonConfig
	if *configPath != "" {
		if _, err := toml.DecodeFile(*configPath, &cfg); err != nil {
			log.G(ctx).WithError(err).Fatalf("failed to read config %s", *configPath)
		}
	}

	if err := os.MkdirAll(*root, 0700); err != nil {
		log.G(ctx).WithError(err).Fatalf("failed to create root %s", *root)
	}
	fs, err := stargzfs.NewFilesystem(filepath.Join(*root, "stargz"), cfg.Config,
		stargzfs.WithGetSources(source.FromDefaultLabels(registryHosts(cfg.Resolver))),
		stargzfs.WithMetricsLogLevel(logrus.InfoLevel))
	if err != nil {
		log.G(ctx).WithError(err).Fatal("failed to configure filesystem")
	}
	sn, err := snapshot.NewSnapshotter(ctx, filepath.Join(*root, "snapshotter"), fs, snapshot.AsynchronousRemove)
	if err != nil {
		log.G(ctx).WithError(err).Fatal("failed to create snapshotter")
	}

	if cfg.MetricsAddress != "" {
		l, err := net.Listen("tcp", cfg.MetricsAddress)
		if err != nil {
			log.G(ctx).WithError(err).Fatalf("failed to listen on metrics address %s", cfg.MetricsAddress)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.Handler())
		go func() {
			if err := http.Serve(l, mux); err != nil {
				log.G(ctx).WithError(err).Error("metrics server stopped")
			}
		}()
	}

	rpc := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(rpc, snapshotservice.FromSnapshotter(sn))
	if err := os.MkdirAll(filepath.Dir(*address), 0700); err != nil {
		log.G(ctx).WithError(err).Fatalf("failed to create directory for %s", *address)
	}
	if err := os.RemoveAll(*address); err != nil {
		log.G(ctx).WithError(err).Fatalf("failed to remove stale socket %s", *address)
	}
	l, err := net.Listen("unix", *address)
	if err != nil {
		log.G(ctx).WithError(err).Fatalf("failed to listen on %s", *address)
	}

	errCh := make(chan error, 1)
	go func() { errCh <- rpc.Serve(l) }()
	log.G(ctx).WithField("address", *address).Info("stargz snapshotter serving")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		log.G(ctx).Infof("got %v, shutting down", s)
	case err := <-errCh:
		log.G(ctx).WithError(err).Error("gRPC server stopped")
	}
	rpc.Stop()
	// Like the upstream daemon on SIGTERM, keep the snapshot directories so the
	// next start restores (remounts) the remote snapshots containerd still
	// records. Close would delete committed snapshot directories and the next
	// start would fail to restore them. The lab unmounts the FUSE mounts left
	// behind; --cleanup-on-exit is for throwaway roots.
	if *cleanupOnExit {
		if err := sn.Close(); err != nil {
			log.G(ctx).WithError(err).Error("failed to close snapshotter")
			os.Exit(1)
		}
	}
}
