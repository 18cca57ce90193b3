// Package client is playhead's Go device SDK: what a video player embeds to
// report where the viewer is, to resume on another device at the same
// second, and to hear about changes as they happen.
//
// It has two halves, as etcd's raft library has:
//
//   - The core — Tracker, Queue, EventFilter, Backoff — is plain state
//     machines: no goroutines, no sockets, no clock, no global randomness.
//     Time comes in as Unix milliseconds, randomness as a seeded
//     *rand.Rand, the queue's disk as a QueueStorage. The deterministic
//     simulator (cluster-sim) drives exactly this code with a virtual clock.
//   - The wrapper — Client and Subscription — does the HTTP and WebSocket
//     I/O around the core and owns every goroutine the SDK starts.
//
// The SDK imports nothing of playhead but crdt, whose HLC, Version and
// Update it shares with the nodes.
//
// # Order of calls
//
// Once per app start:
//
//	c, err := client.New(client.Config{
//		BaseURL:   "https://playhead.example.com",
//		Token:     jwt,
//		Device:    "tv-livingroom",          // stable per physical device
//		QueuePath: filepath.Join(dataDir, "playhead-queue"),
//	})
//	c.Flush(ctx) // deliver what was queued when the app last stopped
//	sub, err := c.Subscribe(ctx, profile, onEvent) // optional: live changes
//
// When the viewer picks a video:
//
//	cur, err := c.Resume(ctx, profile, video)  // nil: start at 0
//	start := int64(0)
//	if cur != nil {
//		start = cur.ResumeMs
//	}
//	tr := c.NewTracker(client.TrackerConfig{
//		Session: newSessionID(), // new for each playback start
//		Video:   video,
//		Meta:    client.Metadata{Title: title, SeriesID: series, NextVideo: next},
//	})
//	send(tr.Start(c.NowMs(), start, durationMs))
//
// On every player tick (cheap; call it as often as the player likes), and
// on every player event:
//
//	send(tr.Observe(c.NowMs(), positionMs, state)) // state: crdt.StatePlaying, …
//	send(tr.Pause(c.NowMs(), positionMs))
//	send(tr.Play(c.NowMs(), positionMs))    // resume after a pause
//	send(tr.SeekTo(c.NowMs(), positionMs))
//	send(tr.Stop(c.NowMs(), positionMs))    // the viewer left
//	send(tr.Complete(c.NowMs()))            // watched to the end
//	send(tr.Tick(c.NowMs()))                // a timer, when there is no position to give
//
// where send reports the update when the tracker produced one:
//
//	func send(u crdt.Update, ok bool) {
//		if !ok {
//			return
//		}
//		res, err := c.Report(ctx, profile, u)
//		switch {
//		case err != nil:
//			// refused for good (a bug: bad ids, position past the end); dropped
//		case res.Outcome == client.Stale:
//			// another session moved on: offer to jump to res.Cursor
//		}
//	}
//
// Report blocks for one request at most (Config.RequestTimeout); call it
// from a goroutine that may block, not from the player's render loop. All
// Client methods are safe for concurrent use; a Tracker is not (one per
// playback, called from one goroutine).
//
// # What the Tracker sends, and when
//
// Every update carries a version (epoch, seq, session) that the Tracker
// stamps itself from the Client's hybrid logical clock (HLC). The node keeps
// the largest version per video (DESIGN.md §3), so:
//
//   - a new epoch opens at Start, on resume after a pause, and on a seek
//     (SeekTo, or a position jump that playback time cannot explain): the
//     most recently touched session wins, and a deliberate seek backwards
//     beats the later positions it goes back from;
//   - within an epoch, seq grows with every update: the latest wins.
//
// Coalescing keeps the write rate low: while playing, one update every
// 10 s; at once on start, pause, resume, seek, stop and completion; every
// 2 s in the last 5 % of the video; nothing while paused. Title, series and
// next episode go with the session's first update only. See TrackerConfig
// for the knobs.
//
// # Clocks
//
// Every answer of a node carries its HLC in the Playhead-HLC header; the
// Client observes it (and every cursor it receives), so the next stamp is
// above everything this device has seen — a seek made after seeing another
// device's position beats that position, whatever the device clocks say.
// Client.NowMs also corrects the device clock by its measured offset from
// the node's, so a device whose clock is minutes off stamps versions near
// everyone else's and within the node's allowed skew. Pass c.NowMs() to
// the Tracker.
//
// A device whose clock ran ahead by more than the node's max_clock_skew
// before it heard from a node has stamped versions the node refuses (400,
// APIError.ClockSkew), and its HLC has been pushed ahead with them. The
// Client then recovers by itself: it restarts its HLC from the node's clock
// (never below the largest HLC the nodes have shown it), gives the queued
// updates stamped from the future fresh versions in their original order,
// and sends the refused update once more, re-stamped. Trackers made with
// Client.NewTracker follow the new clock (opening a new epoch if theirs came
// from the old one). An update refused again is dropped, never retried in
// a loop.
//
// # Offline
//
// Report never loses an update for a transient failure. With no answer
// from the node (no network, timeout), a 5xx, a 429 or 503 (then also for
// the Retry-After wait, during which nothing is sent), or a 401 (refresh the
// token with SetToken), the update goes to the offline queue and Report
// returns Outcome Queued. While the queue holds anything, later reports join
// it and go out with it, so that the node receives this device's updates
// in their true order.
//
// The queue keeps, per (profile, video, session), only the update with the
// largest version — the one that decides that session's cursor and history
// entry — with the metadata of the ones it replaced. It is written to
// Config.QueuePath after every change: a new file, fsynced, renamed over the
// old one, so a crash leaves the old queue or the new one, never a torn
// file; a file that is torn anyway (or not a queue file) is logged and the
// queue starts empty. Flush replays it per profile in one POST batch of up
// to 500 updates (more batches only beyond 500), in true version order;
// updates the node answers are removed, whether applied or stale. Flush
// runs when the app calls it, when a Report reaches the node, and when a
// Subscription reconnects.
//
// Stale answers (409, or applied=false in a batch) mean a larger version is
// stored: the answer's cursor is where the viewer's profile is now. A 409
// whose cursor carries the update's own version is a retried write that had
// succeeded, and counts as Applied.
//
// # Push
//
// Subscribe follows one profile: cursor events (a video's position moved
// on), takeover events (another session took a video over from one of this
// profile's sessions — if it is yours, pause and offer "Continue on this
// device?"), cleared events (history deleted). It connects over WebSocket
// (GET …/events), reconnects with exponential backoff and full jitter
// (250 ms doubling to 30 s, from Config.Rand), and resumes with after=<the
// subscription's resume point> — where it started, not the last
// updated_hlc seen, since changes arrive out of that order — so that
// nothing is missed; versions already delivered are dropped. When the WebSocket fails WSFailuresBeforePoll
// times in a row (a proxy that blocks it), it long-polls GET …/changes
// instead and tries the WebSocket again every WSRetryInterval. The handler
// runs on the subscription's goroutine; cancel the context or call Close to
// stop it: Close returns once every goroutine it started has ended.
//
// Over long-poll the subscription asks for deletions too
// (…/changes?include=cleared, passing back the node's poll= id): a
// delete-all made while the device was away, and any deletion committed
// while a poll waits or between two polls on the same node, arrive as
// cleared events.
//
// # History controls
//
// DeleteEntry (DELETE …/history/{entry_id}), DeleteVideo (DELETE
// …/history?video=ID: its entries and its cursor), DeleteAllHistory
// (DELETE …/history), HistoryPaused and SetHistoryPaused (GET and PUT
// …/settings). They are not queued offline: they fail with ErrOffline or
// ErrRetryLater and the app decides whether to ask again.
//
// # Endpoints
//
// Every endpoint of docs/API.md that a device uses: PUT …/positions/{video}
// (Report), POST …/positions (Flush, the queue in batches), GET
// …/positions/{video} (Resume, with Playhead-Seen), GET …/events and GET
// …/changes (Subscribe), GET …/continue-watching (ContinueWatching), GET
// …/history (History), the history controls above. The JavaScript SDK
// (client/js) wraps the same ones.
//
// # What is persisted
//
// Only the offline queue (Config.QueuePath). The HLC, the clock offset, the
// Retry-After wait and the subscriptions' resume points live in memory; a
// restarted app relearns the clock from its first answer. To resume a
// subscription across restarts without missing a change, save
// Subscription.After and pass it to SubscribeAfter.
package client
