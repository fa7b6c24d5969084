// Package chanbench holds Go's channel micro-benchmarks from Go 1.19's
// src/runtime/chan_test.go, restated in this file (same names, same goroutine
// structure, same channel capacities, same definition of an op) so that they can be
// run next to their gort port in ../src/main.rs. Standard library only.
//
// Run: GOPROXY=off GOMAXPROCS=2 go test -run=NONE -bench=. -benchtime=0.5s
// (../run.py builds the test binary once with go test -c and runs one benchmark per
// process). A fixed -benchtime=<N>x also works, but then b.RunParallel sizes its grain
// from the single cold b.N=1 run, and SelectUncontended, ChanUncontended and the like
// mostly measure pb.Next's shared counter.
package chanbench

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// chunk is how many channel operations a goroutine does each time it claims work from
// the shared counter in ChanSync and ChanProdCons* (Go's CallsPerSched).
const chunk = 1000

// BenchmarkChanSync: two goroutines take turns on one unbuffered channel. Work is
// claimed in rounds of `chunk` exchanges; a goroutine with an even round number receives
// then sends, one with an odd number sends then receives, so the two always pair up.
// b.N/chunk rounds (rounded down to an even number) of `chunk` exchanges per goroutine
// move b.N values in total: an op is one hand-off over the unbuffered channel.
func BenchmarkChanSync(b *testing.B) {
	const procs = 2 // fixed at 2 whatever GOMAXPROCS is, as in Go
	rounds := int32(b.N / chunk / procs * procs)
	finished := make(chan bool, procs)
	ch := make(chan int)
	for p := 0; p < procs; p++ {
		go func() {
			for {
				r := atomic.AddInt32(&rounds, -1)
				if r < 0 {
					break
				}
				for k := 0; k < chunk; k++ {
					if r%2 == 0 {
						<-ch
						ch <- 0
					} else {
						ch <- 0
						<-ch
					}
				}
			}
			finished <- true
		}()
	}
	for p := 0; p < procs; p++ {
		<-finished
	}
}

// benchmarkChanProdCons: GOMAXPROCS producers and GOMAXPROCS consumers share one
// channel of capacity size. Producers claim chunks of `chunk` sends until b.N/chunk
// chunks are gone, then each sends one 0; a consumer receives until it gets a 0. An op
// is one value sent and received.
func benchmarkChanProdCons(b *testing.B, size int) {
	procs := runtime.GOMAXPROCS(-1)
	chunks := int32(b.N / chunk)
	finished := make(chan bool, 2*procs)
	ch := make(chan int, size)
	for p := 0; p < procs; p++ {
		go func() {
			sink := 0
			for atomic.AddInt32(&chunks, -1) >= 0 {
				for k := 0; k < chunk; k++ {
					ch <- 1
				}
			}
			ch <- 0
			finished <- sink == 42
		}()
		go func() {
			sink := 0
			for {
				if v := <-ch; v == 0 {
					break
				}
			}
			finished <- sink == 42
		}()
	}
	for p := 0; p < procs; p++ {
		<-finished
		<-finished
	}
}

// BenchmarkChanProdCons0: producers and consumers over an unbuffered channel.
func BenchmarkChanProdCons0(b *testing.B) { benchmarkChanProdCons(b, 0) }

// BenchmarkChanProdCons10: producers and consumers over a channel of capacity 10.
func BenchmarkChanProdCons10(b *testing.B) { benchmarkChanProdCons(b, 10) }

// BenchmarkChanProdCons100: producers and consumers over a channel of capacity 100.
func BenchmarkChanProdCons100(b *testing.B) { benchmarkChanProdCons(b, 100) }

// BenchmarkSelectUncontended: each RunParallel goroutine owns two channels of capacity
// 1 and one token; an op is a 2-case select that takes the token from whichever channel
// holds it, then a send that puts it into the other one.
func BenchmarkSelectUncontended(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		a := make(chan int, 1)
		z := make(chan int, 1)
		a <- 0
		for pb.Next() {
			select {
			case <-a:
				z <- 0
			case <-z:
				a <- 0
			}
		}
	})
}

// BenchmarkSelectSyncContended: three shared unbuffered channels. Every RunParallel
// goroutine starts a helper that keeps offering a value on all three at once (a 4-case
// select that also watches done), then receives with a 3-case select over the three;
// an op is one such receive. done is closed after the run to stop the helpers.
func BenchmarkSelectSyncContended(b *testing.B) {
	c1 := make(chan int)
	c2 := make(chan int)
	c3 := make(chan int)
	done := make(chan int)
	b.RunParallel(func(pb *testing.PB) {
		go func() {
			for {
				select {
				case c1 <- 0:
				case c2 <- 0:
				case c3 <- 0:
				case <-done:
					return
				}
			}
		}()
		for pb.Next() {
			select {
			case <-c1:
			case <-c2:
			case <-c3:
			}
		}
	})
	close(done)
}

// BenchmarkChanPopular: 1000 goroutines each loop b.N times over a select on one
// shared channel that never receives anything and one channel of its own; the
// benchmark goroutine sends b.N times on each of the 1000 own channels. Every select
// parks with a waiter on the shared channel too, so its wait queue holds up to 1000
// entries that must be unlinked on each wake-up. An op is one send to each of the 1000
// goroutines (1000 hand-offs).
func BenchmarkChanPopular(b *testing.B) {
	const n = 1000
	popular := make(chan bool)
	var own []chan bool
	var wg sync.WaitGroup
	wg.Add(n)
	for j := 0; j < n; j++ {
		d := make(chan bool)
		own = append(own, d)
		go func() {
			for i := 0; i < b.N; i++ {
				select {
				case <-popular:
				case <-d:
				}
			}
			wg.Done()
		}()
	}
	for i := 0; i < b.N; i++ {
		for _, d := range own {
			d <- true
		}
	}
	wg.Wait()
}

// perOp is how many sends (and then receives) one op does in ChanUncontended and
// ChanContended (Go's C).
const perOp = 100

// BenchmarkChanUncontended: each RunParallel goroutine owns a channel of capacity 100;
// an op is 100 sends that fill it, then 100 receives that empty it (never blocks).
func BenchmarkChanUncontended(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		ch := make(chan int, perOp)
		for pb.Next() {
			for i := 0; i < perOp; i++ {
				ch <- 0
			}
			for i := 0; i < perOp; i++ {
				<-ch
			}
		}
	})
}

// BenchmarkChanContended: as ChanUncontended, but all RunParallel goroutines share one
// channel of capacity 100*GOMAXPROCS (so sends never block either): an op is 100 sends
// then 100 receives on the shared channel.
func BenchmarkChanContended(b *testing.B) {
	ch := make(chan int, perOp*runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for i := 0; i < perOp; i++ {
				ch <- 0
			}
			for i := 0; i < perOp; i++ {
				<-ch
			}
		}
	})
}
