package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"

	"roomd/rooms"
	"roomd/rooms/admin"
	"roomd/rooms/cluster"
	"roomd/rooms/metrics"
	"roomd/wsedge"
)

// listeners are the addresses roomd bound, reported once it serves.
type listeners struct {
	public, adminGRPC, adminHTTP net.Addr
}

// HTTP server limits, with -read-header-timeout: a client that never
// finishes its request headers is cut off instead of holding a socket.
// idleTimeout is the admin listener's; the public one waits no longer
// than -read-header-timeout for anything (see publicServer).
const (
	idleTimeout    = 60 * time.Second
	maxHeaderBytes = 16 << 10
)

// run serves until ctx ends or a listener fails, then shuts down: clients
// get 1001, watches end, and everything stops within cfg.shutdownTimeout.
// ready, if not nil, is called with the bound addresses once serving.
// An error before anything is served is a *startError.
func run(ctx context.Context, cfg config, log *slog.Logger, ready func(listeners)) (err error) {
	started := false
	defer func() {
		if err != nil && !started {
			err = &startError{err}
		}
	}()
	tokens, err := cfg.tokenVerifier()
	if err != nil {
		return err
	}
	if tokens == nil {
		log.Warn("development mode: no -jwt-secret or -jwt-public-key, so clients name themselves with ?user= and nobody checks it")
	}
	adminToken, err := cfg.loadAdminToken()
	if err != nil {
		return err
	}
	tlsConfig, stopCertReload, err := cfg.loadTLS(log)
	if err != nil {
		return err
	}
	defer stopCertReload()
	if adminToken == "" && (!isLoopbackAddr(cfg.adminGRPC) || !isLoopbackAddr(cfg.adminHTTP)) {
		log.Warn("-admin-insecure: the admin API listens beyond loopback without a token; anyone who reaches it controls every room")
	}
	nodeName := cfg.cluster.node()
	var node *cluster.Node // with -nats-url: this node's part of the cluster
	if cfg.cluster.natsURL != "" {
		if node, err = cfg.connectCluster(ctx, nodeName, log); err != nil {
			return err
		}
		defer node.Close()
	}
	hubCfg := rooms.Config{
		NodeName:            nodeName,
		MaxQueueBytes:       cfg.maxQueueBytes,
		MaxRooms:            cfg.maxRooms,
		MaxClientsPerRoom:   cfg.maxClientsPerRoom,
		DefaultHistorySize:  cfg.historySize,
		MaxRoomHistoryBytes: cfg.historyBytesPerRoom,
		MaxHistoryBytes:     cfg.historyBytes,
		MaxWatchers:         cfg.maxWatchers,
	}
	if node != nil {
		hubCfg.NewBroker = node.NewBroker
	}
	hub := rooms.NewHub(hubCfg)
	readyz := &readiness{node: node}
	var edge *wsedge.Edge
	stats := metrics.Sources{Hub: hub.Stats, Edge: func() wsedge.Stats { return edge.Stats() }, Ready: readyz.ready, Version: admin.BuildVersion()}
	if node != nil {
		stats.Cluster = node.Stats
	}
	meters := metrics.New(stats)
	maxConns := cfg.connectionLimit()
	edge = wsedge.New(wsedge.Config{
		Hub:             hub,
		AutoCreate:      cfg.autoCreate,
		MaxMessageBytes: cfg.maxMessageBytes,
		PingInterval:    cfg.pingInterval,
		PongTimeout:     cfg.pongTimeout,
		WriteTimeout:    cfg.writeTimeout,
		Tokens:          tokens,
		AllowedOrigins:  cfg.origins(),
		MaxConns:        maxConns,
		MaxConnsPerIP:   cfg.maxConnsPerIP,
		MessageRate:     cfg.messageRate,
		MessageBurst:    cfg.messageBurst,
		MaxRoomsPerConn: cfg.maxRoomsPerConn,
		MaxRoomsPerIP:   cfg.maxRoomsPerIP,
		MaxRoomsPerUser: cfg.maxRoomsPerUser,
		TrustedProxies:  cfg.proxies(),
		ProxyProtocol:   cfg.proxyProtocol,
		ProxyTimeout:    cfg.readHeaderTimeout,
		Logger:          log,
		WriteLatency:    meters.ObserveWriteLatency,
	})

	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	// No TCP keep-alive: WebSocket pings already find dead peers, and
	// setting it costs a system call per accepted connection.
	lc := net.ListenConfig{KeepAlive: -1}
	listen := func(flagName, addr string) (net.Listener, error) {
		ln, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("-%s: %w", flagName, err)
		}
		lns = append(lns, ln)
		return ln, nil
	}
	publicLn, err := listen("listen", cfg.listen)
	if err != nil {
		return err
	}
	grpcLn, err := listen("admin-grpc", cfg.adminGRPC)
	if err != nil {
		return err
	}
	httpLn, err := listen("admin-http", cfg.adminHTTP)
	if err != nil {
		return err
	}

	// Public sockets are counted from accept, under TLS: a socket over the
	// limits costs no handshake.
	files := &outOfFiles{log: log, maxConns: maxConns}
	publicLn = withTLS(edge.Listener(files.watch(publicLn, "listen"), tlsConfig != nil), tlsConfig, publicProtocols)
	grpcLn = withTLS(files.watch(grpcLn, "admin-grpc"), tlsConfig, grpcProtocols)
	httpLn = withTLS(files.watch(httpLn, "admin-http"), tlsConfig, adminHTTPProtocols)

	// The addresses as a person reaches them: the start line prints them
	// and ListNodes answers them.
	public := reachableHostPort(publicLn.Addr())
	self := admin.LocalNode{
		PublicURL: scheme(tlsConfig, "http", "https") + "://" + public,
		AdminGRPC: reachableHostPort(grpcLn.Addr()),
		AdminHTTP: reachableHostPort(httpLn.Addr()),
		StartedAt: time.Now(),
	}

	adminRooms := admin.HubRooms(hub, self)
	if node != nil {
		startCtx, cancelStart := context.WithTimeout(ctx, 30*time.Second)
		err := node.Start(startCtx, hub, self)
		cancelStart()
		if err != nil {
			return err
		}
		adminRooms = node.Rooms()
	}

	maxRecv := adminMaxRecvBytes(cfg.maxMessageBytes)
	grpcSrv, health := admin.NewGRPCServer(
		admin.NewServiceWithOptions(adminRooms, admin.Options{MaxPayloadBytes: int(cfg.maxMessageBytes), Logger: log}),
		append(admin.ServerOptions(admin.ServerConfig{Token: adminToken, MaxRecvMsgBytes: maxRecv, MaxConcurrentCalls: cfg.adminMaxCalls, Logger: log, Refused: meters.AdminRefused("grpc")}),
			grpc.ChainUnaryInterceptor(meters.GRPC.UnaryServerInterceptor()),
			grpc.ChainStreamInterceptor(meters.GRPC.StreamServerInterceptor()))...)
	meters.GRPC.InitializeMetrics(grpcSrv)
	// The gateway reaches the same gRPC server in process, without TLS; the
	// server still checks the token it forwards.
	inProcessLn := admin.ListenInProcess()
	lns = append(lns, inProcessLn)
	gwConn, err := admin.DialInProcess(inProcessLn)
	if err != nil {
		return fmt.Errorf("gateway client: %w", err)
	}
	defer gwConn.Close()
	gwCtx, cancelGateway := context.WithCancel(context.Background())
	defer cancelGateway()
	gateway, err := admin.NewGateway(gwCtx, gwConn, admin.GatewayConfig{MaxBodyBytes: 2 * int64(maxRecv), Token: adminToken, MaxConcurrentCalls: cfg.adminMaxCalls, WriteTimeout: cfg.writeTimeout, Refused: meters.AdminRefused("rest")})
	if err != nil {
		return err
	}
	errorLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	publicSrv := publicServer(withReadyz(readyz, edge.Handler()), cfg.readHeaderTimeout, cfg.writeTimeout, errorLog)
	adminMux := http.NewServeMux()
	adminMux.Handle("GET /metrics", meters.Handler())
	adminMux.Handle("/", withReadyz(readyz, gateway))
	adminSrv := &http.Server{Handler: adminMux, ReadHeaderTimeout: cfg.readHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes, ErrorLog: errorLog}

	failed := make(chan error, 4)
	var serving sync.WaitGroup
	serve := func(name string, f func() error) {
		serving.Add(1)
		go func() {
			defer serving.Done()
			if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
				failed <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	serve("public listener", func() error { return publicSrv.Serve(publicLn) })
	serve("admin gRPC", func() error { return grpcSrv.Serve(grpcLn) })
	serve("admin gRPC (in process)", func() error { return grpcSrv.Serve(inProcessLn) })
	serve("admin HTTP", func() error { return adminSrv.Serve(httpLn) })
	lns = nil // the servers own and close them now

	started = true
	log.Info("roomd serving",
		"demo", self.PublicURL+"/",
		"websocket", scheme(tlsConfig, "ws", "wss")+"://"+public+"/ws/{room_id}",
		"client_protocol", scheme(tlsConfig, "ws", "wss")+"://"+public+"/ws",
		"admin_grpc", self.AdminGRPC,
		"admin_rest", scheme(tlsConfig, "http", "https")+"://"+self.AdminHTTP+"/v1/rooms",
		"admin_token", adminToken != "",
		"tls", tlsConfig != nil,
		"auto_create", cfg.autoCreate)
	if ready != nil {
		ready(listeners{public: publicLn.Addr(), adminGRPC: grpcLn.Addr(), adminHTTP: httpLn.Addr()})
	}

	healthCtx, stopHealth := context.WithCancel(context.Background())
	defer stopHealth()
	go readyz.reportHealth(healthCtx, health)

	select {
	case <-ctx.Done():
	case err = <-failed:
		log.Error("listener failed; shutting down", "error", err)
	}
	// Not ready from here on: /readyz 503, gRPC health NOT_SERVING.
	readyz.draining.Store(true)
	health.Shutdown()
	window := cfg.ops.drainWindow
	if err == nil {
		err = drainGrace(cfg.ops.drainGrace, failed, log, hub.ClientCount())
	}
	if err != nil {
		window = 0 // a failed listener: stop at once
	}
	log.Info("closing client connections", "window", window, "clients", hub.ClientCount())

	drainCtx, cancel := context.WithTimeout(context.Background(), window+cfg.shutdownTimeout)
	defer cancel()
	var stopping sync.WaitGroup
	stopping.Add(1)
	go func() {
		defer stopping.Done()
		// The listener closes at once: from here new connections are
		// refused by the kernel, which a load balancer retries elsewhere.
		// Sockets still short of a request when the drain ends are cut.
		if publicSrv.Shutdown(drainCtx) != nil {
			_ = publicSrv.Close()
		}
	}()
	if err := edge.Drain(drainCtx, window); err != nil {
		log.Warn("clients did not finish closing in time; cut them off", "error", err)
	}
	stopping.Wait()
	hub.Close() // ends WatchRoom streams, so the servers below stop at once
	stopGRPC(drainCtx, grpcSrv)
	cancelGateway()
	_ = adminSrv.Shutdown(drainCtx)
	serving.Wait()
	log.Info("roomd stopped")
	return err
}

// publicServer serves the public listener. Until a socket upgrades, every
// wait on its client is bounded: by readTimeout, the TLS handshake, the
// request headers, the request body (nothing here reads one, but net/http
// discards up to 256 KiB of it before answering, with no deadline of its
// own) and the wait for another request on a kept-alive socket (IdleTimeout,
// otherwise a minute); by writeTimeout, each response (a client that
// pipelines requests and never reads would otherwise hold its socket
// forever). After the upgrade wsedge sets deadlines of its own.
func publicServer(h http.Handler, readTimeout, writeTimeout time.Duration, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
	}
}

// reachableHostPort is addr as a person can type or click it: a wildcard
// address (":8080" binds [::]) becomes localhost.
func reachableHostPort(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// stopGRPC lets running calls finish until ctx ends, then cuts them.
func stopGRPC(ctx context.Context, srv *grpc.Server) {
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		srv.Stop()
		<-done
	}
}
