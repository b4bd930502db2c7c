// go_chan - the Go peer of bench_chan: W7a-W7d (shared/WORKLOADS.md) on Go
// channels and select, standard library only, built offline by meson
// (go build).  bench_chan runs it as a child process per run:
//
//	go_chan w7a P N CAP   (CAP -1: no bounded flavour; Go has none unbounded)
//	go_chan w7b ROUNDS
//	go_chan w7c N
//
// It prints "ok SECONDS HWM" (the timed region only; HWM: its peak RSS in
// KiB) or "bad" and exits 1.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func w7a(p, n, capacity uint64) (float64, bool) {
	ch := make(chan uint64, capacity)
	start := time.Now()
	var wg sync.WaitGroup
	counts := make([]uint64, p)
	sums := make([]uint64, p)
	var rg sync.WaitGroup
	for r := uint64(0); r < p; r++ {
		rg.Add(1)
		go func(r uint64) {
			defer rg.Done()
			var c, s uint64
			for v := range ch {
				c++
				s += v
			}
			counts[r], sums[r] = c, s
		}(r)
	}
	for i := uint64(0); i < p; i++ {
		wg.Add(1)
		go func(i uint64) {
			defer wg.Done()
			for k := uint64(0); k < n; k++ {
				ch <- i*n + k + 1
			}
		}(i)
	}
	wg.Wait()
	close(ch) // the last sender closes
	rg.Wait()
	t := time.Since(start).Seconds()
	var c, s uint64
	for r := uint64(0); r < p; r++ {
		c += counts[r]
		s += sums[r]
	}
	total := p * n
	return t, c == total && s == total*(total+1)/2
}

func w7b(rounds uint64) (float64, bool) {
	a := make(chan uint64)
	b := make(chan uint64)
	start := time.Now()
	done := make(chan uint64)
	go func() {
		var c uint64
		for v := range a {
			b <- v + 1
			c++
		}
		done <- c
	}()
	var v uint64
	for i := uint64(0); i < rounds; i++ {
		a <- v
		v = <-b
	}
	close(a)
	c := <-done
	t := time.Since(start).Seconds()
	return t, c == rounds && v == rounds
}

func w7c(n uint64) (float64, bool) {
	var chs [4]chan uint64
	for i := range chs {
		chs[i] = make(chan uint64, 128)
	}
	start := time.Now()
	for i := 0; i < 4; i++ {
		go func(i int) {
			for k := uint64(0); k < n; k++ {
				chs[i] <- uint64(i)*n + k + 1
			}
			close(chs[i])
		}(i)
	}
	var c, s uint64
	c0, c1, c2, c3 := chs[0], chs[1], chs[2], chs[3]
	for c0 != nil || c1 != nil || c2 != nil || c3 != nil {
		select {
		case v, ok := <-c0:
			if !ok {
				c0 = nil
			} else {
				c++
				s += v
			}
		case v, ok := <-c1:
			if !ok {
				c1 = nil
			} else {
				c++
				s += v
			}
		case v, ok := <-c2:
			if !ok {
				c2 = nil
			} else {
				c++
				s += v
			}
		case v, ok := <-c3:
			if !ok {
				c3 = nil
			} else {
				c++
				s += v
			}
		}
	}
	t := time.Since(start).Seconds()
	total := 4 * n
	return t, c == total && s == total*(total+1)/2
}

func arg(i int) uint64 {
	v, err := strconv.ParseUint(os.Args[i], 10, 64)
	if err != nil {
		fmt.Println("bad")
		os.Exit(1)
	}
	return v
}

func main() {
	var t float64
	var ok bool
	switch os.Args[1] {
	case "w7a":
		t, ok = w7a(arg(2), arg(3), arg(4))
	case "w7b":
		t, ok = w7b(arg(2))
	case "w7c":
		t, ok = w7c(arg(2))
	}
	if !ok {
		fmt.Println("bad")
		os.Exit(1)
	}
	fmt.Printf("ok %.9f %d\n", t, hwm())
}

// hwm: this process's peak resident set (VmHWM, KiB), or 0.
func hwm() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				v, _ := strconv.Atoi(f[1])
				return v
			}
		}
	}
	return 0
}
