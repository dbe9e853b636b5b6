package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/url"
	"runtime"
	"time"
)

// maxRSSSamples bounds the RSS timeline kept during -idle.
const maxRSSSamples = 3600

// run performs one benchmark: create rooms, connect, settle (and idle),
// publish, drain, tear down. Progress goes to log; the report is returned
// even when a later phase failed, with what was measured until then.
func run(ctx context.Context, cfg *config, log io.Writer) (*report, error) {
	wsURLs, err := checkURLs("url", cfg.url, "ws")
	if err != nil {
		return nil, err
	}
	// One admin API per address: publishers are spread over them, and
	// rooms are created and deleted through the first.
	var apis []admin
	defer func() {
		for _, a := range apis {
			a.close()
		}
	}()
	switch {
	case cfg.via == "grpc":
		addrs, err := checkHostPorts("admin-grpc", cfg.adminGRPC)
		if err != nil {
			return nil, err
		}
		for _, addr := range addrs {
			apis = append(apis, &grpcAdmin{addr: addr})
		}
	default:
		us, err := checkURLs("admin", cfg.admin, "http")
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			if cfg.isCentrifugo() {
				apis = append(apis, newCentrifugoAdmin(u, cfg.apiKey, cfg.publishers))
			} else {
				apis = append(apis, newRESTAdmin(u, cfg.publishers))
			}
		}
	}
	api := apis[0]
	srcs, err := parseSourceAddrs(cfg.sourceAddrs)
	if err != nil {
		return nil, err
	}
	limit, err := raiseFileLimit()
	if err != nil {
		return nil, fmt.Errorf("raise the file limit: %w", err)
	}
	// One fd per client, plus a margin for the admin connections.
	if uint64(cfg.conns)+64 > limit {
		return nil, fmt.Errorf("-conns %d needs more file descriptors than the limit %d (ulimit -Hn)", cfg.conns, limit)
	}

	rep := newReport(cfg, len(wsURLs), len(apis))
	sample := func() (procSample, bool) {
		if len(cfg.serverPIDs) == 0 {
			return procSample{}, false
		}
		s, err := readProcs(cfg.serverPIDs)
		if err != nil {
			fmt.Fprintf(log, "roombench: reading server /proc: %v\n", err)
			return procSample{}, false
		}
		return s, true
	}
	sleep := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-ctx.Done():
			return false
		}
	}

	roomIDs := make([]string, cfg.rooms)
	for i := range roomIDs {
		roomIDs[i] = fmt.Sprintf("%s-%d", cfg.roomPrefix, i)
	}
	switch {
	case cfg.isCentrifugo():
		fmt.Fprintf(log, "%d rooms are Centrifugo channels %s-0..: nothing to create\n", cfg.rooms, cfg.roomPrefix)
	case cfg.noCreate:
		fmt.Fprintf(log, "%d rooms %s-0.. are another process's (-no-create): not creating or deleting them\n", cfg.rooms, cfg.roomPrefix)
	default:
		fmt.Fprintf(log, "creating %d rooms via %s\n", cfg.rooms, cfg.via)
	}
	for _, id := range roomIDs {
		if cfg.noCreate {
			break
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := api.createRoom(cctx, id)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("create room %s: %w", id, err)
		}
	}
	if !cfg.keepRooms && !cfg.noCreate {
		defer func() {
			// Other processes in the rooms end their drain by -publish-at
			// + -duration + -drain (unless they started late), give or
			// take the moment each takes to start and to stop: wait for
			// them, so that deleting the rooms does not cut them off.
			if !cfg.publishAt.IsZero() {
				if until := cfg.publishAt.Add(cfg.duration + cfg.drain + time.Second); time.Now().Before(until) {
					fmt.Fprintf(log, "waiting until %s, when the other processes' drains end, to delete the rooms\n", until.Format(time.TimeOnly))
					sleep(time.Until(until))
				}
			}
			for _, id := range roomIDs {
				cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_ = api.deleteRoom(cctx, id)
				cancel()
			}
		}()
	}

	// Setup: connect every client.
	f := newFleet(cfg)
	defer f.close(5 * time.Second)
	if cfg.isCentrifugo() {
		// Runs after every return below, before the connections close.
		defer func() {
			rep.Centrifugo = &centrifugoReport{}
			rep.Centrifugo.Frames, rep.Centrifugo.PingsAnswered = f.counts.centrifugoSum()
		}()
	}
	before, haveProc := sample()
	runtime.GC()
	loaderBefore := selfCPU()
	fmt.Fprintf(log, "connecting %d clients (%d at a time) to %s, read by %s\n", cfg.conns, cfg.dialWorkers, nodesWhat(wsURLs), readerWhat(cfg.reader, cfg.pollers))
	t0 := time.Now()
	connected, err := f.connect(ctx, wsURLs, roomIDs, srcs)
	if err != nil {
		return nil, err
	}
	setup := time.Since(t0)
	rep.Setup = setupReport{
		Connected:         connected,
		Failed:            cfg.conns - connected,
		Errors:            maps.Clone(f.dialErrs),
		Seconds:           setup.Seconds(),
		PerSecond:         float64(connected) / setup.Seconds(),
		LoaderCPUSeconds:  (selfCPU() - loaderBefore).Seconds(),
		ServerRSSBeforeKB: before.RSSKiB,
	}
	if after, ok := sample(); ok && haveProc {
		rep.Setup.ServerCPUSeconds = (after.CPU - before.CPU).Seconds()
		if connected > 0 {
			rep.Setup.ServerCPUMicrosPerConn = float64(after.CPU-before.CPU) / float64(time.Microsecond) / float64(connected)
		}
		rep.Setup.ServerRSSAfterKB = after.RSSKiB
	}
	if len(wsURLs) > 1 {
		rep.Setup.ConnectedPerNode = f.connectedPerNode(len(wsURLs))
	}
	fmt.Fprintf(log, "connected %d/%d in %.2fs (%.0f/s)\n", connected, cfg.conns, setup.Seconds(), rep.Setup.PerSecond)
	rep.Setup.CarriedBytes = f.carried.Load()
	if cfg.stalled > 0 {
		n := f.stall(ctx, wsURLs, roomIDs, srcs, cfg.stalled)
		fmt.Fprintf(log, "stalled %d/%d more members that never read\n", n, cfg.stalled)
	}
	if connected == 0 {
		return rep, fmt.Errorf("no client connected: %v", f.dialErrs)
	}

	// Memory: settle, then optionally hold the idle connections.
	if !sleep(cfg.settle) {
		return rep, ctx.Err()
	}
	if s, ok := sample(); ok && haveProc {
		rep.Memory.SettledKB = s.RSSKiB
		rep.Memory.MinKB, rep.Memory.LastKB = s.RSSKiB, s.RSSKiB
	}
	if cfg.idle > 0 {
		fmt.Fprintf(log, "holding %d idle connections for %s\n", connected, cfg.idle)
		end := time.Now().Add(cfg.idle)
		for i := 0; i < maxRSSSamples && time.Now().Before(end); i++ {
			if !sleep(min(time.Second, time.Until(end))) {
				return rep, ctx.Err()
			}
			if s, ok := sample(); ok && haveProc {
				rep.Memory.MinKB = min(rep.Memory.MinKB, s.RSSKiB)
				rep.Memory.LastKB = s.RSSKiB
				rep.Memory.Timeline = append(rep.Memory.Timeline, rssPoint{Seconds: s.At.Sub(t0).Seconds(), KB: s.RSSKiB})
			}
		}
	}
	if haveProc {
		rep.Memory.PerConnKB = float64(rep.Memory.LastKB-before.RSSKiB) / float64(connected)
		rep.Memory.PerConnMinKB = float64(rep.Memory.MinKB-before.RSSKiB) / float64(connected)
	}
	rep.Memory.Connections = connected
	f.mu.Lock()
	if len(f.closes) > 0 {
		fmt.Fprintf(log, "connections ended while idle: %v\n", f.closes)
	}
	rep.Closes = maps.Clone(f.closes)
	f.mu.Unlock()
	// With -publish-at a process without publishers still receives the
	// other processes' messages; without, it only held idle connections.
	if cfg.setupOnly || (cfg.publishers == 0 && cfg.publishAt.IsZero()) {
		return rep, nil
	}

	// Publish (or, without publishers, receive for as long), then wait for
	// the outstanding deliveries.
	var late time.Duration
	if !cfg.publishAt.IsZero() {
		if d := time.Until(cfg.publishAt); d > 0 {
			fmt.Fprintf(log, "waiting %s for -publish-at %s\n", d.Round(time.Millisecond), cfg.publishAt.Format(time.RFC3339Nano))
			if !sleep(d) {
				return rep, ctx.Err()
			}
		} else {
			late = -d
			fmt.Fprintf(log, "roombench: publishing %s after -publish-at: this process was still setting up\n", late.Round(time.Millisecond))
		}
	}
	if cfg.publishers > 0 {
		fmt.Fprintf(log, "publishing: %d publishers at %s for %s through %d admin address(es)\n", cfg.publishers, rateString(cfg.rate), cfg.duration, len(apis))
	} else {
		fmt.Fprintf(log, "receiving the other processes' messages for %s\n", cfg.duration)
	}
	pubBefore, _ := sample()
	recv0, _, _, _ := f.counts.sum()
	others0 := f.counts.othersSum()
	frames0, _ := f.counts.centrifugoSum()
	loader0 := selfCPU()
	f.recordOn.Store(true)
	p0 := time.Now()
	ps := &publishStats{}
	if cfg.publishers > 0 {
		if ps, err = publish(ctx, cfg, apis, roomIDs); err != nil {
			return rep, err
		}
	} else if !sleep(cfg.duration) {
		return rep, ctx.Err()
	}
	pubTime := time.Since(p0)
	var okTotal uint64
	for _, n := range ps.ok {
		okTotal += n
	}
	want := f.expected(ps.ok)
	drainStart := time.Now()
	complete := false
	// With -publish-at other processes publish too: once this process's
	// own deliveries are in, wait until theirs stop coming for otherQuiet.
	// The window ends when the last delivery came: once the own are in,
	// or, waiting for the others to be quiet, at the last of theirs.
	othersSeen, quietSince := f.counts.othersSum(), drainStart
	var ownDone time.Time
	for i := 0; i < 100_000; i++ {
		_, unique, _, _ := f.counts.sum()
		if n := f.counts.othersSum(); n != othersSeen {
			othersSeen, quietSince = n, time.Now()
		}
		if unique >= want && ownDone.IsZero() {
			ownDone = time.Now()
		}
		if !ownDone.IsZero() && (cfg.publishAt.IsZero() || time.Since(quietSince) >= otherQuiet) {
			complete = true
			break
		}
		if time.Since(drainStart) > cfg.drain || !sleep(5*time.Millisecond) {
			break
		}
	}
	windowEnd := time.Now()
	if complete && !cfg.publishAt.IsZero() {
		windowEnd = quietSince
		if ownDone.After(windowEnd) {
			windowEnd = ownDone
		}
	}
	window := windowEnd.Sub(p0)
	f.recordOn.Store(false)
	pubAfter, _ := sample()
	loaderCPU := selfCPU() - loader0
	received, unique, dups, malformed := f.counts.sum()
	received -= recv0
	others := f.counts.othersSum() - others0 // other processes' deliveries in the window
	frames, _ := f.counts.centrifugoSum()
	frames -= frames0
	n, q, maxLat := f.hist.quantiles(0.5, 0.9, 0.99, 0.999)
	pr := publishReport{
		Published:        okTotal,
		PublishErrors:    ps.errs.Load(),
		PublishPerSecond: float64(okTotal) / pubTime.Seconds(),
		PublishLagMaxMs:  ms(time.Duration(ps.maxLag.Load())),
		DueUnsent:        ps.dueUnsent.Load(),
		Expected:         want,
		Received:         received,
		Unique:           unique,
		Lost:             f.lost(ps.ok),
		Duplicates:       dups,
		Malformed:        malformed,
		DrainComplete:    complete,
		DrainSeconds:     windowEnd.Sub(drainStart).Seconds(),
		PublishSeconds:   pubTime.Seconds(),
		WindowSeconds:    window.Seconds(),
		DeliveriesPerSec: float64(unique+others) / window.Seconds(),
		LatencySamples:   n,
		LatencyP50Ms:     ms(q[0]),
		LatencyP90Ms:     ms(q[1]),
		LatencyP99Ms:     ms(q[2]),
		LatencyP999Ms:    ms(q[3]),
		LatencyMaxMs:     ms(maxLat),
		LoaderCPUSeconds: loaderCPU.Seconds(),
		LoaderCPUPercent: 100 * loaderCPU.Seconds() / window.Seconds(),
		ServerRSSAfterKB: pubAfter.RSSKiB,
		ServerCPUSeconds: (pubAfter.CPU - pubBefore.CPU).Seconds(),
		ServerCPUPercent: 100 * (pubAfter.CPU - pubBefore.CPU).Seconds() / window.Seconds(),
		Stalled:          len(f.stalled),
		PublishLateMs:    ms(late),
		OtherProcesses:   f.otherProcesses(),
	}
	if api.countsRecipients() {
		n := ps.recipients.Load()
		pr.ServerRecipients = &n
	}
	if cfg.isCentrifugo() {
		pr.Frames = frames
	}
	if pr.Stalled > 0 {
		pr.StalledDropCode = slowCode(cfg.target)
		pr.StalledDropped, pr.StalledEnds = f.stalledDropped(pr.StalledDropCode)
	}
	if e, ok := ps.firstErr.Load().(string); ok {
		pr.FirstError = e
	}
	if all := unique + others; all > 0 {
		pr.ServerCPUMicrosPerDelivery = float64(pubAfter.CPU-pubBefore.CPU) / float64(time.Microsecond) / float64(all)
		pr.LoaderMicrosPerDl = float64(loaderCPU) / float64(time.Microsecond) / float64(all)
	}
	if !haveProc {
		pr.ServerCPUSeconds, pr.ServerCPUPercent, pr.ServerCPUMicrosPerDelivery = 0, 0, 0
	}
	rep.Publish = &pr
	f.mu.Lock()
	rep.Closes = maps.Clone(f.closes)
	f.mu.Unlock()
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	return rep, nil
}

// nodesWhat is how the log names the -url list.
func nodesWhat(urls []*url.URL) string {
	if len(urls) == 1 {
		return urls[0].String()
	}
	return fmt.Sprintf("%d nodes (%s ... %s)", len(urls), urls[0], urls[len(urls)-1])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func rateString(r float64) string {
	if r == 0 {
		return "full speed"
	}
	return fmt.Sprintf("%g msg/s each", r)
}
