// Command go-bench runs the anchor workloads of shared/bench/WORKLOADS.md on Go's own
// runtime, the reference the other systems are compared with.
//
// Usage: go-bench <workload> [n], environment WORKERS (default 2; syscall_handoff always
// uses 2), which sets runtime.GOMAXPROCS. One run prints one line on stdout:
//
//	workload=<name> n=<N> ns_per_op=<x> total_ms=<y> workers=<w> [extra key=value ...]
//
// The workload body runs in the main goroutine; "waiting for all" is a sync.WaitGroup;
// channels are unbuffered (capacity 0) everywhere, as in the classic programs; GC runs at
// the default GOGC. A failed check exits 1, a bad command line 2, an unsupported workload
// 3 (the tokio-only syscall_handoff variants), and a panic crashes the process (exit 2).
// Standard library only: building needs no module download.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Exit statuses, as in the Rust binaries (bench/common).
const (
	exitCheckFailed = 1
	exitUsage       = 2
	exitUnsupported = 3
)

// Fixed workload parameters (WORKLOADS.md, "Command-line contract").
const (
	goroutines     = 1000 // yield, mutex, syscall_handoff yielders: n/1000 ops each
	skynetFanout   = 10
	ringGoroutines = 10000
	sleepFor       = 10 * time.Millisecond
	idleSettle     = 50 * time.Millisecond // idle_mem: wait before reading the parked RSS
	blockers       = 2
	blockFor       = 200 * time.Millisecond
	handoffWorkers = 2 // syscall_handoff ignores WORKERS
	echoConns      = 100
	msgBytes       = 64
	costRounds     = 10     // syscall_cost: timed rounds of (raw, wrapped)
	costWarmup     = 100000 // syscall_cost: untimed calls of each kind first
)

// workloads maps each workload name to its implementation and default n.
var workloads = map[string]struct {
	run      func(n, workers int) *report
	defaultN int
}{
	"spawn":           {spawn, 1000000},
	"skynet":          {skynet, 1000000},
	"pingpong":        {pingpong, 1000000},
	"locked_pingpong": {lockedPingpong, 100000},
	"yield":           {yield, 1000000},
	"ring":            {ring, 1000000},
	"sleep":           {sleep, 100000},
	"idle_mem":        {idleMem, 100000},
	"mutex":           {mutex, 1000000},
	"syscall_handoff": {syscallHandoff, 1000000},
	"syscall_cost":    {syscallCost, 2000000},
	"echo":            {echo, 1000000},
}

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		usage("expected <workload> [n]")
	}
	name := os.Args[1]
	w, ok := workloads[name]
	if !ok {
		if strings.HasPrefix(name, "syscall_handoff_") {
			// tokio's spawn_blocking / block_in_place variants have no Go counterpart.
			fmt.Fprintf(os.Stderr, "unsupported workload %s\n", name)
			os.Exit(exitUnsupported)
		}
		usage("unknown workload " + name)
	}
	n := w.defaultN
	if len(os.Args) == 3 {
		v, err := strconv.Atoi(strings.ReplaceAll(os.Args[2], "_", ""))
		if err != nil || v <= 0 {
			usage(fmt.Sprintf("bad n %q: want a positive integer", os.Args[2]))
		}
		n = v
	}
	workers := 2
	if s, set := os.LookupEnv("WORKERS"); set {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			usage(fmt.Sprintf("bad WORKERS %q: want a positive integer", s))
		}
		workers = v
	}
	if name == "syscall_handoff" {
		workers = handoffWorkers
	}
	runtime.GOMAXPROCS(workers)
	w.run(n, workers).print()
}

func usage(what string) {
	fmt.Fprintf(os.Stderr, "go-bench: %s\n", what)
	fmt.Fprintln(os.Stderr, "usage: go-bench <workload> [n]   (env WORKERS, default 2)")
	fmt.Fprintln(os.Stderr, "workloads: spawn skynet pingpong locked_pingpong yield ring sleep idle_mem mutex "+
		"syscall_handoff syscall_cost echo")
	os.Exit(exitUsage)
}

func checkFailed(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "check failed: "+format+"\n", args...)
	os.Exit(exitCheckFailed)
}

// perGoroutine splits n ops evenly over g goroutines; n must be a positive multiple of g.
func perGoroutine(workload string, n, g int) int {
	if n%g != 0 {
		fmt.Fprintf(os.Stderr, "%s: n=%d must be a positive multiple of %d\n", workload, n, g)
		os.Exit(exitUsage)
	}
	return n / g
}

// report is one result line under construction.
type report struct{ line strings.Builder }

func newReport(workload string, n int, total time.Duration, workers int) *report {
	r := &report{}
	ns := float64(total.Nanoseconds())
	fmt.Fprintf(&r.line, "workload=%s n=%d ns_per_op=%.1f total_ms=%.3f workers=%d",
		workload, n, ns/float64(n), ns/1e6, workers)
	return r
}

func (r *report) field(key string, value any) *report {
	fmt.Fprintf(&r.line, " %s=%v", key, value)
	return r
}

func (r *report) print() { fmt.Println(r.line.String()) }

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d.Nanoseconds())/1e6) }

// spawn: n goroutines each doing one atomic add.
func spawn(n, workers int) *report {
	var counter int64
	var wg sync.WaitGroup
	wg.Add(n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&counter, 1)
			wg.Done()
		}()
	}
	wg.Wait()
	total := time.Since(start)
	if got := atomic.LoadInt64(&counter); got != int64(n) {
		checkFailed("spawn: counter %d, want %d", got, n)
	}
	return newReport("spawn", n, total, workers)
}

// skynet: the classic program, a 10-ary tree of goroutines over n leaves.
func skynet(n, workers int) *report {
	size := n
	for size > 1 && size%skynetFanout == 0 {
		size /= skynetFanout
	}
	if size != 1 || n < skynetFanout {
		fmt.Fprintf(os.Stderr, "skynet: n=%d must be a power of %d\n", n, skynetFanout)
		os.Exit(exitUsage)
	}
	c := make(chan int)
	start := time.Now()
	go skynetNode(c, 0, n)
	result := <-c
	total := time.Since(start)
	if want := n * (n - 1) / 2; result != want {
		checkFailed("skynet: result %d, want %d", result, want)
	}
	return newReport("skynet", n, total, workers).field("result", result)
}

func skynetNode(parent chan int, num, size int) {
	if size == 1 {
		parent <- num
		return
	}
	c := make(chan int)
	child := size / skynetFanout
	for i := 0; i < skynetFanout; i++ {
		go skynetNode(c, num+i*child, child)
	}
	sum := 0
	for i := 0; i < skynetFanout; i++ {
		sum += <-c
	}
	parent <- sum
}

// pingpong: two goroutines bounce a value n times over two unbuffered channels.
func pingpong(n, workers int) *report {
	ping, pong := make(chan int), make(chan int)
	var wg sync.WaitGroup
	wg.Add(2)
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			pong <- <-ping
		}
		wg.Done()
	}()
	go func() {
		for i := 0; i < n; i++ {
			ping <- i
			if v := <-pong; v != i {
				checkFailed("pingpong: got %d back, want %d", v, i)
			}
		}
		wg.Done()
	}()
	wg.Wait()
	return newReport("pingpong", n, time.Since(start), workers).field("chan_capacity", 0)
}

// lockedPingpong: pingpong where the echoing goroutine is locked to its OS thread
// (runtime.LockOSThread) and the driving one is not: every hand-off to the locked
// goroutine must wake its own thread. Checks every returned value.
func lockedPingpong(n, workers int) *report {
	ping, pong := make(chan int), make(chan int)
	var wg sync.WaitGroup
	wg.Add(2)
	start := time.Now()
	go func() {
		runtime.LockOSThread()
		tid := syscall.Gettid()
		for i := 0; i < n; i++ {
			pong <- <-ping
		}
		if syscall.Gettid() != tid {
			checkFailed("locked_pingpong: the locked goroutine moved to another thread")
		}
		runtime.UnlockOSThread()
		wg.Done()
	}()
	go func() {
		for i := 0; i < n; i++ {
			ping <- i
			if v := <-pong; v != i {
				checkFailed("locked_pingpong: got %d back, want %d", v, i)
			}
		}
		wg.Done()
	}()
	wg.Wait()
	total := time.Since(start)
	return newReport("locked_pingpong", n, total, workers).
		field("us_per_round_trip", fmt.Sprintf("%.2f", float64(total.Nanoseconds())/1e3/float64(n))).
		field("chan_capacity", 0).
		field("locked", "echoer")
}

// yield: 1000 goroutines each call runtime.Gosched n/1000 times.
func yield(n, workers int) *report {
	per := perGoroutine("yield", n, goroutines)
	var wg sync.WaitGroup
	wg.Add(goroutines)
	start := time.Now()
	for g := 0; g < goroutines; g++ {
		go func() {
			for i := 0; i < per; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return newReport("yield", n, time.Since(start), workers)
}

// ring: 10,000 goroutines forward a token around a ring n/10,000 times. Goroutine i
// receives on channel i and sends on channel i+1 (mod 10,000); the last hop of the last
// round goes back to the main goroutine instead. Each hop adds one to the token.
func ring(n, workers int) *report {
	rounds := perGoroutine("ring", n, ringGoroutines)
	chans := make([]chan int, ringGoroutines)
	for i := range chans {
		chans[i] = make(chan int)
	}
	done := make(chan int)
	for i := 0; i < ringGoroutines; i++ {
		in, next := chans[i], chans[(i+1)%ringGoroutines]
		last := i == ringGoroutines-1
		go func() {
			for round := 1; round <= rounds; round++ {
				token := <-in + 1
				if last && round == rounds {
					done <- token
				} else {
					next <- token
				}
			}
		}()
	}
	start := time.Now()
	chans[0] <- 0
	hops := <-done
	total := time.Since(start)
	if hops != n {
		checkFailed("ring: %d hops, want %d", hops, n)
	}
	return newReport("ring", n, total, workers).
		field("goroutines", ringGoroutines).
		field("rounds", rounds)
}

// sleep: n goroutines each time.Sleep 10 ms; lateness per goroutine.
func sleep(n, workers int) *report {
	late := make([]int64, n)
	var wg sync.WaitGroup
	wg.Add(n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func(slot *int64) {
			t0 := time.Now()
			time.Sleep(sleepFor)
			*slot = int64(time.Since(t0) - sleepFor)
			wg.Done()
		}(&late[i])
	}
	wg.Wait()
	total := time.Since(start)
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	us := func(pct int) string {
		rank := (n*pct + 99) / 100 // ⌈pct/100 · n⌉, 1-based
		if rank < 1 {
			rank = 1
		}
		return fmt.Sprintf("%.1f", float64(late[rank-1])/1e3)
	}
	return newReport("sleep", n, total, workers).
		field("p50_late_us", us(50)).
		field("p99_late_us", us(99)).
		field("max_late_us", us(100))
}

// vmRSS returns VmRSS from /proc/self/status, in bytes.
func vmRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "VmRSS:" {
			kib, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				panic(err)
			}
			return kib * 1024
		}
	}
	panic("no VmRSS in /proc/self/status")
}

// idleMem: n goroutines each blocked receiving on its own unbuffered channel.
func idleMem(n, workers int) *report {
	rssBefore := vmRSS()
	chans := make([]chan int, n)
	for i := range chans {
		chans[i] = make(chan int)
	}
	rssAfterChannels := vmRSS()
	var started, finished sync.WaitGroup
	started.Add(n)
	finished.Add(n)
	start := time.Now()
	for _, c := range chans {
		go func(c chan int) {
			started.Done()
			<-c
			finished.Done()
		}(c)
	}
	started.Wait()
	ramp := time.Since(start)
	time.Sleep(idleSettle)
	rssParked := vmRSS()
	for _, c := range chans {
		c <- 1
	}
	finished.Wait()
	return newReport("idle_mem", n, ramp, workers).
		field("rss_before", rssBefore).
		field("rss_after_channels", rssAfterChannels).
		field("rss_parked", rssParked).
		field("bytes_per_goroutine", (rssParked-rssBefore)/int64(n)).
		field("bytes_per_goroutine_excl_chan", (rssParked-rssAfterChannels)/int64(n))
}

// mutex: 1000 goroutines each lock a shared sync.Mutex and increment n/1000 times.
func mutex(n, workers int) *report {
	per := perGoroutine("mutex", n, goroutines)
	var mu sync.Mutex
	counter := 0
	var wg sync.WaitGroup
	wg.Add(goroutines)
	start := time.Now()
	for g := 0; g < goroutines; g++ {
		go func() {
			for i := 0; i < per; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	total := time.Since(start)
	mu.Lock()
	got := counter
	mu.Unlock()
	if got != n {
		checkFailed("mutex: counter %d, want %d", got, n)
	}
	return newReport("mutex", n, total, workers)
}

// blockInOS sleeps d in a real blocking system call (not the runtime's timer), retrying
// on EINTR with the remaining time.
func blockInOS(d time.Duration) {
	ts := syscall.NsecToTimespec(d.Nanoseconds())
	for {
		var rem syscall.Timespec
		if err := syscall.Nanosleep(&ts, &rem); err != syscall.EINTR {
			if err != nil {
				panic(err)
			}
			return
		}
		ts = rem
	}
}

// syscallHandoff: 2 goroutines block in nanosleep(2) for 200 ms while 1000 goroutines
// each yield n/1000 times.
func syscallHandoff(n, workers int) *report {
	per := perGoroutine("syscall_handoff", n, goroutines)
	var blockersWG, yieldersWG sync.WaitGroup
	blockersWG.Add(blockers)
	yieldersWG.Add(goroutines)
	yieldersLeft := int64(goroutines)
	var yieldersDone int64 // ns since start, stored by the last yielder
	start := time.Now()
	for b := 0; b < blockers; b++ {
		go func() {
			blockInOS(blockFor)
			blockersWG.Done()
		}()
	}
	for g := 0; g < goroutines; g++ {
		go func() {
			for i := 0; i < per; i++ {
				runtime.Gosched()
			}
			if atomic.AddInt64(&yieldersLeft, -1) == 0 {
				atomic.StoreInt64(&yieldersDone, int64(time.Since(start)))
			}
			yieldersWG.Done()
		}()
	}
	yieldersWG.Wait()
	blockersWG.Wait()
	total := time.Since(start)
	return newReport("syscall_handoff", n, total, workers).
		field("yielders_done_ms", ms(time.Duration(atomic.LoadInt64(&yieldersDone)))).
		field("blocking", "nanosleep")
}

// costStep is one step of a syscall_cost measurement: calls calls of one kind (raw or
// wrapped), timed or not (the warm-up). As bench/common syscall_cost_steps.
type costStep struct {
	wrapped bool
	calls   int
	timed   bool
}

// costSteps: a warm-up of min(n, costWarmup) raw then wrapped calls, then costRounds
// rounds of (raw, wrapped) whose timed calls add up to exactly n of each kind.
func costSteps(n int) []costStep {
	warm := n
	if warm > costWarmup {
		warm = costWarmup
	}
	steps := []costStep{{false, warm, false}, {true, warm, false}}
	for r := 0; r < costRounds; r++ {
		calls := n*(r+1)/costRounds - n*r/costRounds
		steps = append(steps, costStep{false, calls, true}, costStep{true, calls, true})
	}
	return steps
}

// syscallCostRounds keeps the ns per call of each timed round of one measurement; the
// figures are medians over the rounds (as bench/common SyscallCost), so that one round hit
// by a stall of the machine does not move them.
type syscallCostRounds struct {
	raw, wrapped []float64
	wrappedTotal time.Duration
}

func (c *syscallCostRounds) record(s costStep, took time.Duration) {
	if !s.timed || s.calls == 0 {
		return
	}
	ns := float64(took.Nanoseconds()) / float64(s.calls)
	if s.wrapped {
		c.wrapped = append(c.wrapped, ns)
		c.wrappedTotal += took
	} else {
		c.raw = append(c.raw, ns)
	}
}

// median of values (the mean of the middle two for an even count).
func median(values []float64) float64 {
	v := append([]float64(nil), values...)
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// rawNs and wrappedNs: wall ns per call, the median over the rounds (parallel: wall time
// / all calls of a round, as RunParallel).
func (c *syscallCostRounds) rawNs() float64     { return median(c.raw) }
func (c *syscallCostRounds) wrappedNs() float64 { return median(c.wrapped) }

// getppidLoop makes calls getppid calls, bare (syscall.RawSyscall) or wrapped
// (syscall.Syscall: entersyscall/exitsyscall around the same call); every result is
// checked against want.
func getppidLoop(wrapped bool, calls int, want uintptr) {
	bad := 0
	if wrapped {
		for i := 0; i < calls; i++ {
			if r, _, _ := syscall.Syscall(syscall.SYS_GETPPID, 0, 0, 0); r != want {
				bad++
			}
		}
	} else {
		for i := 0; i < calls; i++ {
			if r, _, _ := syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0); r != want {
				bad++
			}
		}
	}
	if bad != 0 {
		checkFailed("syscall_cost: %d getppid calls did not return %d", bad, want)
	}
}

// syscallCost: ns per syscall.RawSyscall(SYS_GETPPID) and per syscall.Syscall(SYS_GETPPID)
// (runtime BenchmarkSyscall's entersyscall/exitsyscall around a real call), n calls each,
// first from the main goroutine, then from GOMAXPROCS goroutines in parallel (RunParallel:
// wall time / all calls). Raw and wrapped alternate in rounds after a warm-up.
func syscallCost(n, workers int) *report {
	want := uintptr(syscall.Getppid())
	steps := costSteps(n)
	var single, parallel syscallCostRounds
	for _, s := range steps {
		t0 := time.Now()
		getppidLoop(s.wrapped, s.calls, want)
		single.record(s, time.Since(t0))
	}
	for _, s := range steps {
		var wg sync.WaitGroup
		wg.Add(workers)
		t0 := time.Now()
		for i := 0; i < workers; i++ {
			calls := s.calls / workers
			if i < s.calls%workers {
				calls++
			}
			go func() {
				getppidLoop(s.wrapped, calls, want)
				wg.Done()
			}()
		}
		wg.Wait()
		parallel.record(s, time.Since(t0))
	}
	f := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	return newReport("syscall_cost", n, single.wrappedTotal, workers).
		field("raw_ns", f(single.rawNs())).
		field("wrapped_ns", f(single.wrappedNs())).
		field("overhead_ns", f(single.wrappedNs()-single.rawNs())).
		field("par_goroutines", workers).
		field("par_raw_ns", f(parallel.rawNs())).
		field("par_wrapped_ns", f(parallel.wrappedNs())).
		field("par_overhead_ns", f(parallel.wrappedNs()-parallel.rawNs())).
		field("wrapper", "syscall.Syscall")
}

// echoByte is the byte client conn puts in message i (same as bench/common echo_byte).
func echoByte(conn, i int) byte { return byte((conn*31 + i) % 251) }

// echo: a goroutine-per-connection TCP echo server on 127.0.0.1 and 100 client goroutines
// in the same process, each doing n/100 round trips of 64 bytes.
func echo(n, workers int) *report {
	per := perGoroutine("echo", n, echoConns)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				panic(err)
			}
			go echoServe(c.(*net.TCPConn))
		}
	}()
	var wg sync.WaitGroup
	wg.Add(echoConns)
	start := time.Now()
	for conn := 0; conn < echoConns; conn++ {
		go func(conn int) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				panic(err)
			}
			tc := c.(*net.TCPConn)
			// Closed after wg.Done, as the Rust clients drop their stream.
			defer tc.Close()
			// TCP_NODELAY is Go's default; set it explicitly as the Rust clients do.
			if err := tc.SetNoDelay(true); err != nil {
				panic(err)
			}
			out, back := make([]byte, msgBytes), make([]byte, msgBytes)
			for i := 0; i < per; i++ {
				b := echoByte(conn, i)
				for k := range out {
					out[k] = b
				}
				if _, err := tc.Write(out); err != nil {
					panic(err)
				}
				if _, err := io.ReadFull(tc, back); err != nil {
					panic(err)
				}
				if !bytes.Equal(out, back) {
					checkFailed("echo: connection %d got wrong bytes at %d", conn, i)
				}
			}
			wg.Done()
		}(conn)
	}
	wg.Wait()
	total := time.Since(start)
	return newReport("echo", n, total, workers).
		field("rps", fmt.Sprintf("%.0f", float64(n)/total.Seconds())).
		field("conns", echoConns).
		field("msg_bytes", msgBytes)
}

// echoServe serves one connection: read up to 64 bytes, write back what was read, until
// the client closes.
func echoServe(c *net.TCPConn) {
	defer c.Close()
	if err := c.SetNoDelay(true); err != nil {
		return
	}
	buf := make([]byte, msgBytes)
	for {
		k, err := c.Read(buf)
		if k > 0 {
			if _, werr := c.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
