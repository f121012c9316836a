package redislimit

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgate/chatgate/limit"
)

// rateLog is what this process knows of one key's window: the events it
// logged itself, and the window as Redis last showed it.
//
// A Redis that restarts without persistence forgets every window, and
// would give each key a fresh one. Instead the new Redis admits nothing
// for a grace (see rateScript), in which each replica tells it what it
// knows (replay). The snapshot is what brings back the events of a
// replica that died: they are lost only when it died less than a renewal
// tick (Grace/3) before the restart, after the survivors' last snapshot.
type rateLog struct {
	per  time.Duration
	n    int
	used time.Time         // the last fetch, on this process's clock
	own  map[string]*grant // by member base
	snap []redis.Z
}

// grant is what one check logged for this process: base:0 at at, on
// Redis's clock in us, and the leased base:1..kept-1 at the lease's end
// (the rest were given back).
type grant struct {
	at   int64
	kept int
}

// keptLocked notes that of ls's lease only the slots used are kept: the
// rest are given back. l.mu is held.
func (l *Limiter) keptLocked(key string, ls *lease) {
	if lg := l.logs[key]; lg != nil && ls.base != "" {
		if g := lg.own[ls.base]; g != nil && ls.next < g.kept {
			g.kept = ls.next
		}
	}
}

// Bounds of the snapshots: keys allowed more than maxReplayN events a
// window are not read back (their own events are still replayed), since a
// snapshot holds the whole window; at most maxSnapshots keys are read per
// renewal tick.
const (
	maxReplayN   = 5_000
	maxSnapshots = 500
)

// logOf returns key's log, made if need be. l.mu is held.
func (l *Limiter) logOf(key string, r limit.Rate) *rateLog {
	lg := l.logs[key]
	if lg == nil {
		lg = &rateLog{own: map[string]*grant{}}
		l.logs[key] = lg
	}
	lg.per, lg.n = r.Per, r.N
	return lg
}

// snapshot reads back the windows of the keys this process used within
// their window, and forgets what has left every window. A snapshot of
// another Redis than the one the logs are of (the epoch moved under it)
// is dropped, so that a fresh Redis's empty windows never replace what is
// to be replayed to it.
func (l *Limiter) snapshot(ctx context.Context) error {
	now, local := l.c.redisNow(), time.Now()
	type want struct {
		key string
		cut int64
	}
	var wants []want
	l.mu.Lock()
	for k, lg := range l.logs {
		if local.Sub(lg.used) > lg.per+leaseLife {
			delete(l.logs, k) // nothing of it is left in any window
			continue
		}
		cut := now - lg.per.Microseconds()
		for b, g := range lg.own {
			if g.at+leaseLife.Microseconds() < cut {
				delete(lg.own, b)
			}
		}
		if lg.n <= maxReplayN && len(wants) < maxSnapshots {
			wants = append(wants, want{k, cut})
		}
	}
	l.mu.Unlock()
	if len(wants) == 0 {
		return nil
	}
	pipe := l.c.rdb.Pipeline()
	cmds := make([]*redis.ZSliceCmd, len(wants))
	for i, w := range wants {
		cmds[i] = pipe.ZRangeByScoreWithScores(ctx, l.prefix+w.key, &redis.ZRangeBy{Min: strconv.FormatInt(w.cut, 10), Max: "+inf"})
	}
	// one pipeline runs on one connection, so on one Redis: its epoch
	// says which Redis the windows were read from
	epoch := pipe.Get(ctx, l.c.epoch)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if e, err := epoch.Int64(); err != nil || e != l.c.known.Load() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, w := range wants {
		if lg := l.logs[w.key]; lg != nil {
			if zs, err := cmds[i].Result(); err == nil {
				lg.snap = zs
			}
		}
	}
	return nil
}

// replay tells a Redis that lost the windows what this process knows of
// them. Members are unique, so what several replicas know is counted once.
func (l *Limiter) replay(ctx context.Context) error {
	now := l.c.redisNow()
	type put struct {
		key string
		zs  []redis.Z
		ttl time.Duration
	}
	var puts []put
	l.mu.Lock()
	for k, lg := range l.logs {
		cut := float64(now - lg.per.Microseconds())
		zs := make([]redis.Z, 0, len(lg.snap)+len(lg.own))
		for _, z := range lg.snap {
			if z.Score >= cut {
				zs = append(zs, z)
			}
		}
		for b, g := range lg.own {
			if float64(g.at) >= cut {
				zs = append(zs, redis.Z{Score: float64(g.at), Member: b + ":0"})
			}
			if end := float64(g.at + leaseLife.Microseconds()); end >= cut {
				for i := 1; i < g.kept; i++ {
					zs = append(zs, redis.Z{Score: end, Member: b + ":" + strconv.Itoa(i)})
				}
			}
		}
		if len(zs) > 0 {
			puts = append(puts, put{l.prefix + k, zs, lg.per + leaseLife})
		}
	}
	l.mu.Unlock()
	if len(puts) == 0 {
		return nil
	}
	pipe := l.c.rdb.Pipeline()
	for _, p := range puts {
		pipe.ZAdd(ctx, p.key, p.zs...)
		pipe.PExpire(ctx, p.key, p.ttl)
	}
	_, err := pipe.Exec(ctx)
	return err
}
