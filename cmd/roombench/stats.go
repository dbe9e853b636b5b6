package main

import (
	"bytes"
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Latency histogram: log-linear buckets over nanoseconds, 32 sub-buckets
// per power of two (at most ~3% relative error), lock-free, sharded so that
// thousands of receiver goroutines rarely touch the same cache line.
const (
	subBits    = 5
	subBuckets = 1 << subBits
	numBuckets = (64 - subBits + 1) * subBuckets
	histShards = 16
)

type histShard struct {
	counts [numBuckets]atomic.Uint64
	max    atomic.Int64
	_      [64]byte
}

type histogram struct {
	shards [histShards]histShard
}

func bucketOf(v int64) int {
	if v < subBuckets {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	exp := bits.Len64(uint64(v)) - subBits // >= 1
	sub := int(uint64(v)>>(exp-1)) - subBuckets
	return exp*subBuckets + sub
}

// bucketUpper is the largest value that falls in bucket b.
func bucketUpper(b int) int64 {
	if b < subBuckets {
		return int64(b)
	}
	exp, sub := b/subBuckets, b%subBuckets
	return int64(subBuckets+sub+1)<<(exp-1) - 1
}

func (h *histogram) record(shard int, ns int64) {
	s := &h.shards[shard%histShards]
	s.counts[bucketOf(ns)].Add(1)
	for {
		m := s.max.Load()
		if ns <= m || s.max.CompareAndSwap(m, ns) {
			return
		}
	}
}

// quantiles returns the total count, the values at each quantile (upper
// bound of their bucket, clamped to the maximum) and the maximum.
func (h *histogram) quantiles(qs ...float64) (n uint64, vals []time.Duration, maxv time.Duration) {
	var merged [numBuckets]uint64
	for i := range h.shards {
		s := &h.shards[i]
		for b := range merged {
			c := s.counts[b].Load()
			merged[b] += c
			n += c
		}
		if m := time.Duration(s.max.Load()); m > maxv {
			maxv = m
		}
	}
	vals = make([]time.Duration, len(qs))
	if n == 0 {
		return 0, vals, 0
	}
	for i, q := range qs {
		rank := uint64(q*float64(n) + 0.5)
		rank = min(max(rank, 1), n)
		var seen uint64
		for b, c := range merged {
			seen += c
			if seen >= rank {
				vals[i] = min(time.Duration(bucketUpper(b)), maxv)
				break
			}
		}
	}
	return n, vals, maxv
}

// procSample is a process's resident memory and CPU time at one moment.
type procSample struct {
	At     time.Time
	RSSKiB int64
	CPU    time.Duration // user + system
}

// readProcs samples several processes (the nodes of a cluster on this
// machine): their RSS and CPU time summed.
func readProcs(pids []int) (procSample, error) {
	sum := procSample{At: time.Now()}
	for _, pid := range pids {
		s, err := readProc(pid)
		if err != nil {
			return sum, err
		}
		sum.RSSKiB += s.RSSKiB
		sum.CPU += s.CPU
	}
	return sum, nil
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times; 100 on every
// Linux platform Go supports (sysconf(_SC_CLK_TCK) would need cgo).
const clockTick = 100

// readProc samples /proc/PID/status (VmRSS) and /proc/PID/stat (utime and
// stime, fields 14 and 15).
func readProc(pid int) (procSample, error) {
	s := procSample{At: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				s.RSSKiB, _ = strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces; the rest follows its ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	s.CPU = time.Duration(utime+stime) * time.Second / clockTick
	return s, nil
}

// selfCPU is this process's own user+system CPU time, to the microsecond.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit and returns
// the new soft limit.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return lim.Cur, nil
}
