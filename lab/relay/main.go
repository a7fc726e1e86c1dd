// relay: the lab's delay line. It listens on a TCP address and forwards each
// connection to a target, holding every chunk it reads, in each direction,
// for a fixed one-way delay before writing it on (lab/lab runs it with
// RTT/2, in front of the registry that sits in the shaped network
// namespace). Standard library only; built by lab/lab in GOPATH mode.
//
//	relay -listen 127.0.0.1:5125 -target 10.201.80.14:5123 -delay 10ms -queue 8388608
//
// Each direction is a reader and a writer joined by a queue: the reader
// stamps a chunk with the time it was read and queues it; the writer sleeps
// until that stamp plus the delay and writes it. The reader never waits for
// the writer (only for room in the queue, bounded in bytes: it must hold
// bandwidth x delay), so the delay adds latency and does not cap
// throughput. A peer's half-close (EOF) is passed on, delayed like the data,
// as a half-close of the other side; a connection lives as long as both
// peers keep it.
//
// What it does not emulate: loss, reordering, jitter, and the sender's TCP
// congestion control seeing the delay (each leg is a low-latency TCP
// connection, so slow start and the congestion window grow at loopback
// speed; only the bytes are held back).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

type chunk struct {
	data []byte    // nil: end of stream (half-close)
	due  time.Time // when the writer may write it
}

// queue: chunks in read order, bounded by the bytes they hold.
type queue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []chunk
	bytes  int
	limit  int
	closed bool // the writer is gone: the reader stops
}

func newQueue(limit int) *queue {
	q := &queue{limit: limit}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// put waits for room (a chunk larger than the limit waits for an empty queue).
func (q *queue) put(c chunk) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.closed && q.bytes > 0 && q.bytes+len(c.data) > q.limit {
		q.cond.Wait()
	}
	if q.closed {
		return false
	}
	q.items = append(q.items, c)
	q.bytes += len(c.data)
	q.cond.Broadcast()
	return true
}

func (q *queue) get() (chunk, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.closed && len(q.items) == 0 {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return chunk{}, false
	}
	c := q.items[0]
	q.items[0] = chunk{}
	q.items = q.items[1:]
	q.bytes -= len(c.data)
	q.cond.Broadcast()
	return c, true
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.items = nil
	q.cond.Broadcast()
	q.mu.Unlock()
}

// sleepUntil sleeps in nanosleep(2), not time.Sleep: Go 1.19's timers wake
// through epoll_wait, whose timeout is in whole milliseconds, and overshot a
// 2.5 ms delay by about 0.5 ms in each direction (a 5 ms RTT measured 7 ms).
// The blocked thread is this writer's alone; the kernel's hrtimer keeps it
// within tens of microseconds.
func sleepUntil(due time.Time) {
	for {
		d := time.Until(due)
		if d <= 0 {
			return
		}
		ts := syscall.NsecToTimespec(int64(d))
		_ = syscall.Nanosleep(&ts, nil) // EINTR: the loop sleeps the rest
	}
}

type config struct {
	delay time.Duration
	queue int
	chunk int
}

// pipe copies src to dst through a delay queue; abort ends the whole
// connection (both directions) on an error.
func pipe(cfg config, src, dst *net.TCPConn, abort func(), done *sync.WaitGroup) {
	q := newQueue(cfg.queue)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // reader
		defer wg.Done()
		buf := make([]byte, cfg.chunk)
		for {
			n, err := src.Read(buf)
			now := time.Now()
			if n > 0 {
				data := make([]byte, n)
				copy(data, buf[:n])
				if !q.put(chunk{data: data, due: now.Add(cfg.delay)}) {
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					q.put(chunk{due: now.Add(cfg.delay)})
				} else {
					abort()
					q.close()
				}
				return
			}
		}
	}()
	go func() { // writer
		defer wg.Done()
		for {
			c, ok := q.get()
			if !ok {
				return
			}
			sleepUntil(c.due)
			if c.data == nil {
				_ = dst.CloseWrite()
				q.close()
				return
			}
			if _, err := dst.Write(c.data); err != nil {
				abort()
				q.close()
				return
			}
		}
	}()
	wg.Wait()
	done.Done()
}

func serve(cfg config, client *net.TCPConn, target string) {
	defer client.Close()
	c, err := net.DialTimeout("tcp", target, 10*time.Second)
	if err != nil {
		log.Printf("relay: dial %s: %v", target, err)
		return
	}
	upstream := c.(*net.TCPConn)
	defer upstream.Close()
	for _, k := range []*net.TCPConn{client, upstream} {
		_ = k.SetNoDelay(true)
		_ = k.SetKeepAlive(true)
		_ = k.SetKeepAlivePeriod(30 * time.Second)
	}
	var once sync.Once
	abort := func() {
		once.Do(func() {
			// Abortive close on both sides: the peers see the reset the
			// other side saw, and blocked reads and writes return.
			_ = client.SetLinger(0)
			_ = upstream.SetLinger(0)
			_ = client.Close()
			_ = upstream.Close()
		})
	}
	var done sync.WaitGroup
	done.Add(2)
	go pipe(cfg, client, upstream, abort, &done)
	go pipe(cfg, upstream, client, abort, &done)
	done.Wait()
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	target := flag.String("target", "", "address to forward each connection to")
	delay := flag.Duration("delay", 0, "one-way delay added to every chunk, in each direction (RTT/2)")
	queueBytes := flag.Int("queue", 64<<20, "bytes held per direction and connection at most (>= bandwidth x delay)")
	chunkBytes := flag.Int("chunk", 64<<10, "largest read")
	flag.Parse()
	if *target == "" || *delay < 0 || *queueBytes <= 0 || *chunkBytes <= 0 {
		fmt.Fprintln(os.Stderr, "relay: usage: relay -listen HOST:PORT -target HOST:PORT [-delay D] [-queue BYTES] [-chunk BYTES]")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("relay: listen %s: %v", *listen, err)
	}
	log.Printf("relay: %s -> %s, one-way delay %v, queue %d bytes", ln.Addr(), *target, *delay, *queueBytes)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		ln.Close()
		os.Exit(0)
	}()
	cfg := config{delay: *delay, queue: *queueBytes, chunk: *chunkBytes}
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			log.Fatalf("relay: accept: %v", err)
		}
		go serve(cfg, c.(*net.TCPConn), *target)
	}
}
