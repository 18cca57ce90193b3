package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
)

// prefill gives the read workload something to read: one cursor for every
// (profile, video) of the key space, written in batches of 500 with
// cfg.Concurrency requests in flight. A sentinel cursor written last
// ("prefill-PxV" of p-0) makes a second run on the same target and key space
// skip it.
func (r *runner) prefill(ctx context.Context) error {
	c := r.cfg
	sentinel := "/v1/profiles/p-0/positions/prefill-" + strconv.Itoa(c.Profiles) + "x" + strconv.Itoa(c.Videos)
	if st, _, err := r.do(ctx, http.MethodGet, "p-0", sentinel, nil, false); err == nil && st == http.StatusOK {
		return nil
	}
	type job struct{ p, from int }
	jobs := make(chan job)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for i := range min(c.Concurrency, 16) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{rng: newWorkerRand(c.Seed, 1<<20+i)}
			for j := range jobs {
				b := append(w.buf[:0], `{"updates":[`...)
				for v := j.from; v < min(j.from+500, c.Videos); v++ {
					if v > j.from {
						b = append(b, ',')
					}
					b = append(appendUpdate(append(b, '{'), r.newUpdate(w, j.p, 0, v), true), '}')
				}
				w.buf = append(b, "]}"...)
				st, _, err := r.do(ctx, http.MethodPost, profileID(j.p), "/v1/profiles/"+profileID(j.p)+"/positions", w.buf, false)
				if err == nil && st != http.StatusOK {
					err = fmt.Errorf("POST batch for %s: status %d", profileID(j.p), st)
				}
				if err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		}()
	}
	func() {
		defer close(jobs)
		for p := range c.Profiles {
			for from := 0; from < c.Videos; from += 500 {
				select {
				case jobs <- job{p, from}:
				case err := <-errc:
					errc <- err
					return
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	body := fmt.Appendf(nil, `{"position_ms":1,"duration_ms":%d,"device":"d-0-0","session":"s-prefill"}`, durationMs)
	st, _, err := r.do(ctx, http.MethodPut, "p-0", sentinel, body, false)
	if err == nil && st != http.StatusOK && st != http.StatusConflict {
		err = fmt.Errorf("PUT sentinel: status %d", st)
	}
	return err
}
