#include "document.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "otsync/doc/registry.hpp"
#include "otsync/protocol/errors.hpp"

namespace otsync::doc {
namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {
/// Commits of ops the store lost, tried per loss before the store's shorter history is taken.
constexpr unsigned max_restore_attempts = 3;
/// How long ops the store lost wait in memory for the store to answer again (a failover) before
/// they are given up.
constexpr std::chrono::seconds max_restore_wait{120};
}  // namespace

document::document(asio::any_io_executor executor, registry& owner, store::doc_key key)
    : executor_(std::move(executor)),
      owner_(owner),
      key_(std::move(key)),
      pipeline_(key_, owner.options()),
      resident_(owner.resident()),
      last_active_(clock::now()) {}

document::~document() {
  if (footprint_ != 0) add_resident(-static_cast<std::int64_t>(footprint_));
}

void document::add_resident(std::int64_t delta) noexcept {
  resident_->fetch_add(delta, std::memory_order_relaxed);
}

void document::fetch(std::optional<std::uint64_t> from, read_handler done, clock::time_point asked) {
  enqueue(read_request{nullptr, from, std::move(done), asked});
}

void document::subscribe(std::shared_ptr<subscriber> who, std::optional<std::uint64_t> from, read_handler done,
                         clock::time_point asked) {
  enqueue(read_request{std::move(who), from, std::move(done), asked});
}

void document::unsubscribe(const subscriber* who, std::function<void()> done) {
  enqueue(unsubscribe_request{who, std::move(done)});
}

void document::submit(submission op, submit_handler done) {
  enqueue(submit_entry{std::move(op), std::move(done), clock::now(), 0, {}});
}

void document::transform_presence(std::uint64_t version, std::string src, std::optional<ot::selection> range,
                                  presence_handler done) {
  enqueue(presence_request{version, std::move(src), range, std::move(done)});
}

void document::enqueue(request r) {
  asio::post(executor_, [self = shared_from_this(), r = std::move(r)]() mutable {
    if (self->evicted_) {
      // This instance left the registry; the live one takes the request.
      self->owner_.get(self->key_)->enqueue(std::move(r));
      return;
    }
    if (self->queue_.size() >= self->owner_.options().max_queue) {
      if (auto* read = std::get_if<read_request>(&r)) {
        read->done(read_result{protocol::errors::server_busy(), std::nullopt, {}});
        return;
      }
      if (auto* sub = std::get_if<submit_entry>(&r)) {
        sub->done(submit_result{protocol::errors::server_busy(), {}, sub->original.src, sub->original.seq, 0});
        return;
      }
      if (auto* presence = std::get_if<presence_request>(&r)) {
        presence->done(presence_result{protocol::errors::server_busy(), 0, std::nullopt, false});
        return;
      }
    }
    self->queue_.push_back(std::move(r));
    self->last_active_ = clock::now();
    self->drain();
  });
}

void document::update_busy_flag() {
  busy_flag_.store(busy_ || !queue_.empty(), std::memory_order_relaxed);
}

void document::drain() {
  while (!busy_ && !queue_.empty()) {
    if (stale_ && !feed_token_) {
      // Other instances may have committed since: read the head again.
      stale_ = false;
      state_ = state::unloaded;
    }
    if (state_ != state::ready) {
      if (std::holds_alternative<remote_op_request>(queue_.front()) ||
          std::holds_alternative<resync_request>(queue_.front())) {
        if (feed_token_ && std::holds_alternative<resync_request>(queue_.front())) feed_caught_up_ = true;
        queue_.pop_front();  // the load brings everything
        continue;
      }
      // Reads held for the store wait for the retry timer; so does what queued behind them.
      if (retry_armed_ && is_held_read(queue_.front())) break;
      start_load();
      break;
    }
    auto& front = queue_.front();
    if (auto* unsub = std::get_if<unsubscribe_request>(&front)) {
      remove_subscriber(unsub->who);
      if (unsub->done) unsub->done();
      queue_.pop_front();
      continue;
    }
    if (auto* remote = std::get_if<remote_op_request>(&front)) {
      auto op = std::move(remote->op);
      queue_.pop_front();
      if (op.version < pipeline_.head_version()) continue;  // ours, or already caught up
      if (op.version > pipeline_.head_version()) {
        catch_up(op.version + 1);  // a gap: read the missing ops from the log first
        break;
      }
      std::vector<op_record> one;
      one.push_back(std::move(op));
      apply_remote(std::move(one));
      continue;
    }
    if (auto* resync = std::get_if<resync_request>(&front)) {
      // After a resubscription the store may be another Redis (a failover) that lacks ops this copy
      // has: check its head, at the cost of a reload when nothing is new.
      const head_check check = resync->after_refusal              ? head_check::refused
                               : (feed_caught_up_ && feed_token_) ? head_check::compare
                                                                  : head_check::none;
      if (feed_token_ && !resync->after_refusal) feed_caught_up_ = true;
      queue_.pop_front();
      catch_up(std::nullopt, check);
      break;
    }
    if (auto* presence = std::get_if<presence_request>(&front)) {
      auto moved = pipeline_.transform_presence(presence->version, presence->src, presence->range);
      auto done = std::move(presence->done);
      queue_.pop_front();
      done(std::move(moved));
      continue;
    }
    if (auto* read = std::get_if<read_request>(&front)) {
      if (read->from && *read->from < pipeline_.recent_base()) {
        serve_old_read(*read->from);  // older than the cache: read the gap from the store, then serve
        break;
      }
      serve_read(*read);
      queue_.pop_front();
      continue;
    }
    if (!run_batch()) break;
  }
  // Subscribers wait for ops: a copy that had to be read again (a reload after a lost race, a
  // divergence, a failover) is read now, not at the next request, which may never come. A failed
  // load is retried with backoff instead (retry_load_later).
  if (!busy_ && state_ == state::unloaded && !subscribers_.empty() && owner_.feed() && !evicted_ &&
      load_retry_delay_ == std::chrono::milliseconds(0)) {
    start_load();
  }
  // With a feed but no subscription to it, this copy may fall behind other instances.
  if (!busy_ && queue_.empty() && owner_.feed() && !feed_token_ && state_ == state::ready) stale_ = true;
  update_busy_flag();
  update_footprint();
  // A document that does not exist and that nobody follows holds nothing worth keeping: let it go
  // now, so that reads of many made-up ids do not fill memory until the idle sweep.
  if (!busy_ && queue_.empty() && subscribers_.empty() && state_ == state::ready && pipeline_.head_version() == 0 &&
      !pipeline_.exists()) {
    try_evict(clock::now());
  }
}

void document::update_footprint() {
  // The text, the cached ops (each held as a record and as its encoded frame), and the actor itself.
  constexpr std::size_t actor_bytes = 2048;
  std::size_t now = state_ == state::unloaded ? 0 : actor_bytes + pipeline_.footprint();
  if (now != footprint_) {
    add_resident(static_cast<std::int64_t>(now) - static_cast<std::int64_t>(footprint_));
    footprint_ = now;
  }
}

void document::serve_read(read_request& r) {
  read_result result;
  if (!r.from) {
    result.snap = pipeline_.head_snapshot();
  } else {
    result.ops = pipeline_.cached_frames(*r.from);
  }
  if (r.who) add_subscriber(r.who);
  answer_read(r, std::move(result));
}

void document::answer_read(read_request& r, read_result result) {
  if (r.held) {
    if (auto* obs = owner_.observer()) obs->on_read_held(!result.error);
  }
  r.done(std::move(result));
}

void document::serve_old_read(std::uint64_t from) {
  busy_ = true;
  const std::uint64_t until = pipeline_.recent_base();
  owner_.storage().load_ops(
      key_, from, until, [self = shared_from_this(), from, until](ot::result<std::vector<op_record>> ops) {
        asio::post(self->executor_, [self, from, until, ops = std::move(ops)]() mutable {
          self->busy_ = false;
          if (!ops && ops.error() == store::errc::unavailable) {
            // As a failed load: the read waits for the store (hold_reads).
            self->state_ = state::unloaded;
            self->hold_reads(protocol::to_error_info(ops.error()));
            self->update_busy_flag();
            self->retry_load_later();
            return;
          }
          auto r = std::get<read_request>(std::move(self->queue_.front()));
          self->queue_.pop_front();
          if (!ops) {
            self->answer_read(r, read_result{protocol::to_error_info(ops.error()), std::nullopt, {}});
          } else if (until != self->pipeline_.recent_base() || ops->size() != until - from) {
            self->answer_read(r, read_result{protocol::errors::history_missing_for_read(), std::nullopt, {}});
          } else {
            read_result result;
            for (const auto& op : *ops) result.ops.push_back(self->pipeline_.encode(op));
            auto cached = self->pipeline_.cached_frames(until);
            result.ops.insert(result.ops.end(), cached.begin(), cached.end());
            if (r.who) self->add_subscriber(r.who);
            self->answer_read(r, std::move(result));
          }
          self->drain();
        });
      });
}

void document::start_load() {
  if (state_ == state::loading) return;
  update_footprint();  // a copy being read again no longer counts what it held
  if (owner_.over_budget()) {
    // Open documents hold --max-open-document-bytes already: make room (idle ones go), and refuse
    // this load meanwhile rather than let the process grow without bound.
    owner_.relieve_memory();
    fail_queue(protocol::errors::memory_budget_exceeded());
    update_busy_flag();
    if (!try_evict(clock::now()))
      retry_load_later();  // nothing loaded: this shell need not wait for the idle sweep;
                           // one with subscribers tries again
    return;
  }
  state_ = state::loading;
  busy_ = true;
  owner_.storage().load(key_, std::nullopt, [self = shared_from_this()](ot::result<store::loaded_document> loaded) {
    asio::post(self->executor_, [self, loaded = std::move(loaded)]() mutable { self->on_loaded(std::move(loaded)); });
  });
}

void document::on_loaded(ot::result<store::loaded_document> loaded) {
  busy_ = false;
  std::optional<protocol::error_info> error;
  std::error_code failure;
  submit_pipeline::lost_ops lost;  // committed, broadcast, and no longer in the store
  std::uint64_t stored_head = 0;
  if (!loaded) {
    failure = loaded.error();
    error = protocol::to_error_info(failure);
  } else {
    stored_head = loaded->version_reached();
    if (stored_head < broadcast_version_ && owner_.feed() && owner_.storage().atomic_batches() &&
        restore_attempts_ < max_restore_attempts) {
      lost = lost_ops_for(*loaded);
    } else if (history_diverged_ && stored_head >= broadcast_version_) {
      // Others wrote over a loss before this copy found it: what its subscribers saw from there on
      // is gone (they are not told: the sharedb client never goes back a version).
      if (auto from = pipeline_.first_difference(*loaded); from && *from < broadcast_version_) {
        report_lost_ops(*from, broadcast_version_ - *from, false);
      }
    }
    history_diverged_ = false;
    error = pipeline_.load(std::move(*loaded));  // replays the ops after the stored snapshot onto the rope
  }
  if (error) {
    state_ = state::unloaded;
    fail_or_hold(failure, *error);
    update_busy_flag();
    retry_load_later();
    return;
  }
  if (stored_head < broadcast_version_) {
    // The store lost ops its clients saw committed: every client that saw them is ahead of it, and
    // the sharedb client never goes back a version. Put them back while this copy has them.
    if (!lost.ops.empty()) return restore_lost_ops(std::move(lost));
    give_up_lost_ops(stored_head);
  }
  finish_load();
}

// The ops to put back after `loaded`: those still being put back when an earlier try met a store
// error (the cache was replaced by then), else this copy's cached ones. Before the load replaces it.
submit_pipeline::lost_ops document::lost_ops_for(const store::loaded_document& loaded) {
  const std::uint64_t stored_head = loaded.version_reached();
  auto pending = std::move(pending_restore_);
  pending_restore_.reset();
  if (!pending || pending->ops.empty() || pending->ops.front().version != stored_head) {
    return pipeline_.ops_missing_from(loaded, broadcast_version_);
  }
  if (pending->before && !loaded.ops.empty()) {
    if (!submit_pipeline::same_committed_op(loaded.ops.back(), *pending->before)) return {};
    pending->read_before = false;
  } else {
    pending->read_before = pending->before.has_value();
  }
  return std::move(*pending);
}

void document::finish_load() {
  restore_attempts_ = 0;
  restore_waiting_since_.reset();
  pending_restore_.reset();
  load_retry_delay_ = std::chrono::milliseconds(0);
  // Subscribers (kept across a reload) get the ops committed elsewhere meanwhile.
  if (!subscribers_.empty()) {
    for (const auto& r : pipeline_.recent()) {
      if (r.record.version >= broadcast_version_) broadcast(r.record, r.frame);
    }
  }
  broadcast_version_ = std::max(broadcast_version_, pipeline_.head_version());
  pipeline_.trim_cache();
  state_ = state::ready;
  drain();
}

void document::give_up_lost_ops(std::uint64_t stored_head) {
  pending_restore_.reset();
  report_lost_ops(stored_head, broadcast_version_ - stored_head, false);
  broadcast_version_ = stored_head;  // the store's history is the one from now on
}

// The store could not be reached while putting lost ops back: the queue is answered with the
// error, and the document is read again with backoff; the ops wait in pending_restore_. A loss
// is given up once the store has not answered for max_restore_wait.
void document::reload_later(std::error_code error) {
  state_ = state::unloaded;
  if (!restore_waiting_since_) restore_waiting_since_ = clock::now();
  if (clock::now() - *restore_waiting_since_ > max_restore_wait) pending_restore_.reset();
  fail_or_hold(error, protocol::to_error_info(error));
  update_busy_flag();
  retry_load_later();
}

// Subscribers wait for ops committed elsewhere (a shared store), and held reads for the store: a
// copy that could not be read (the store unreachable) is read again by itself, with backoff, rather
// than at the next request, which may never come; a reload then hands them what they missed.
void document::retry_load_later() {
  const bool reads_waiting = !queue_.empty();  // held by hold_reads
  if (evicted_ || retry_armed_ || (!reads_waiting && (subscribers_.empty() || !owner_.feed()))) return;
  load_retry_delay_ = next_load_retry_delay();
  retry_armed_ = true;
  auto timer = std::make_shared<asio::steady_timer>(executor_, load_retry_delay_);
  timer->async_wait([self = shared_from_this(), timer](boost::system::error_code ec) {
    self->retry_armed_ = false;
    if (ec || self->evicted_ || self->state_ != state::unloaded || (self->subscribers_.empty() && self->queue_.empty()))
      return;
    self->start_load();
  });
}

std::chrono::milliseconds document::next_load_retry_delay() const {
  // Someone is waiting on a held read: try at least once a second.
  const auto longest = queue_.empty() ? std::chrono::milliseconds(5000) : std::chrono::milliseconds(1000);
  return std::clamp(load_retry_delay_ * 2, std::chrono::milliseconds(100), longest);
}

void document::fail_or_hold(std::error_code cause, const protocol::error_info& error) {
  if (cause == store::errc::unavailable) return hold_reads(error);
  fail_queue(error);
}

// The sharedb client never retries a subscription answered with an error: after a failover its
// resubscriptions would leave every document unsubscribed for good. So while the store does not
// answer, reads wait (bounded by max_store_wait and max_queue); submits and presences are answered
// at once (the client keeps the op and sends it again).
void document::hold_reads(const protocol::error_info& error) {
  const auto next_try = clock::now() + next_load_retry_delay();
  const auto wait = owner_.options().max_store_wait;
  std::deque<request> held;
  while (!queue_.empty()) {
    auto r = std::move(queue_.front());
    queue_.pop_front();
    if (auto* read = std::get_if<read_request>(&r); read && read->received + wait > next_try) {
      read->held = true;
      held.push_back(std::move(r));
      continue;
    }
    if (auto* unsub = std::get_if<unsubscribe_request>(&r)) {
      // A subscription held before it would be served after it, and stay: it ends now instead.
      for (auto it = held.begin(); it != held.end();) {
        auto& read = std::get<read_request>(*it);
        if (read.who && read.who.get() == unsub->who) {
          fail_request(*it, error);
          it = held.erase(it);
        } else {
          ++it;
        }
      }
    }
    fail_request(r, error);
  }
  queue_ = std::move(held);
}

void document::restore_lost_ops(submit_pipeline::lost_ops lost) {
  busy_ = true;  // nothing is served from the head until the store has the ops again
  state_ = state::loading;
  pending_restore_ = lost;  // kept until they are back or given up: a store error does not lose them
  if (!lost.read_before) return commit_lost_ops(std::move(lost.ops));
  // The load ended on a stored snapshot: read the store's last op to know it is this copy's.
  const std::uint64_t at = lost.before->version;
  owner_.storage().load_ops(
      key_, at, at + 1, [self = shared_from_this(), lost = std::move(lost)](ot::result<std::vector<op_record>> ops) {
        asio::post(self->executor_, [self, lost = std::move(lost), ops = std::move(ops)]() mutable {
          self->busy_ = false;
          if (!ops) return self->reload_later(ops.error());
          if (ops->size() == 1 && submit_pipeline::same_committed_op(ops->front(), *lost.before)) {
            self->busy_ = true;
            return self->commit_lost_ops(std::move(lost.ops));
          }
          self->give_up_lost_ops(lost.before->version + 1);
          self->finish_load();
        });
      });
}

void document::commit_lost_ops(std::vector<op_record> lost) {
  const std::uint64_t from = lost.front().version;
  const std::size_t count = lost.size();
  auto requests = pipeline_.restore(std::move(lost));
  if (requests.empty()) {
    // They do not apply to the store's head (so not the same history): the head is unusable now;
    // load again and take the store's history.
    busy_ = false;
    pending_restore_.reset();
    restore_attempts_ = max_restore_attempts;
    state_ = state::unloaded;
    return drain();
  }
  ++restore_attempts_;
  owner_.storage().commit_all(std::move(requests), [self = shared_from_this(), from, count](std::error_code ec) {
    asio::post(self->executor_, [self, from, count, ec] {
      self->busy_ = false;
      if (ec == store::errc::version_conflict) {
        // Another instance put them back first, or wrote over the gap: read the store again (at most
        // max_restore_attempts times for one loss).
        self->pending_restore_.reset();
        self->state_ = state::unloaded;
        return self->drain();
      }
      if (ec == store::errc::unavailable) {
        --self->restore_attempts_;  // not a refusal: try again once the store answers
        return self->reload_later(ec);
      }
      if (ec) {
        self->pending_restore_.reset();
        return self->reload_later(ec);
      }
      self->report_lost_ops(from, count, true);
      self->finish_load();
    });
  });
}

void document::report_lost_ops(std::uint64_t from_version, std::size_t ops, bool put_back) {
  if (auto* obs = owner_.observer()) obs->on_store_lost_ops(key_.collection, key_.id, from_version, ops, put_back);
}

void document::fail_queue(const protocol::error_info& error) {
  while (!queue_.empty()) {
    auto r = std::move(queue_.front());
    queue_.pop_front();
    fail_request(r, error);
  }
}

void document::fail_request(request& r, const protocol::error_info& error) {
  if (auto* read = std::get_if<read_request>(&r)) {
    answer_read(*read, read_result{error, std::nullopt, {}});
  } else if (auto* sub = std::get_if<submit_entry>(&r)) {
    auto latency = clock::now() - sub->received;
    sub->done(submit_result{error, {}, sub->original.src, sub->original.seq, 0});
    if (auto* obs = owner_.observer()) obs->on_submit_done(latency, &error);
  } else if (auto* unsub = std::get_if<unsubscribe_request>(&r)) {
    remove_subscriber(unsub->who);
    if (unsub->done) unsub->done();
  } else if (auto* presence = std::get_if<presence_request>(&r)) {
    presence->done(presence_result{error, 0, std::nullopt, false});
  } else if (std::holds_alternative<resync_request>(r) && feed_token_) {
    feed_caught_up_ = true;  // as drain does when a load makes it moot: the next one checks the head
  }
}

bool document::is_held_read(const request& r) {
  const auto* read = std::get_if<read_request>(&r);
  return read != nullptr && read->held;
}

void document::add_subscriber(const std::shared_ptr<subscriber>& who) {
  if (std::find(subscribers_.begin(), subscribers_.end(), who) != subscribers_.end()) return;
  subscribers_.push_back(who);
  auto* feed = owner_.feed();
  if (!feed || feed_token_) return;
  // Ops from other instances, while this instance has subscribers.
  std::weak_ptr<document> weak = weak_from_this();
  feed_caught_up_ = false;
  feed_token_ = feed->subscribe(
      key_,
      [weak](op_record op) {
        if (auto self = weak.lock()) self->enqueue(remote_op_request{std::move(op)});
      },
      [weak] {
        if (auto self = weak.lock()) self->enqueue(resync_request{});
      });
}

void document::remove_subscriber(const subscriber* who) {
  std::erase_if(subscribers_, [&](const auto& s) { return s.get() == who; });
  if (subscribers_.empty() && feed_token_) {
    owner_.feed()->unsubscribe(key_, *feed_token_);
    feed_token_.reset();
  }
}

void document::broadcast(const op_record& op, const shared_frame& frame) {
  if (!subscribers_.empty()) {
    const auto shared = std::make_shared<const op_broadcast>(op_broadcast{frame, op.src, op.version});
    for (const auto& s : subscribers_) s->on_op(shared);
  }
  broadcast_version_ = op.version + 1;
}

void document::apply_remote(std::vector<op_record> ops) {
  auto outcome = pipeline_.apply_remote(std::move(ops));
  for (const auto& op : outcome.applied) broadcast(op.record, op.frame);
  if (outcome.diverged) state_ = state::unloaded;  // the log disagrees with this copy: start again from the store
}

void document::catch_up(std::optional<std::uint64_t> until, head_check check) {
  busy_ = true;
  // Checking the head reads one op more, the last this copy has: the store's log must hold that very
  // op, or it is not this copy's history any more (a failover lost ops, maybe others came after).
  const std::uint64_t head = pipeline_.head_version();
  const bool compare_last = check != head_check::none && head > 0 && head - 1 >= pipeline_.recent_base();
  const std::uint64_t from = compare_last ? head - 1 : head;
  owner_.storage().load_ops(
      key_, from, until, [self = shared_from_this(), check, compare_last](ot::result<std::vector<op_record>> ops) {
        asio::post(self->executor_, [self, check, compare_last, ops = std::move(ops)]() mutable {
          self->busy_ = false;
          bool same_history = true;
          if (ops && compare_last) {
            same_history = !ops->empty() && self->pipeline_.has_committed(ops->front());
            if (same_history) ops->erase(ops->begin());
            if (!same_history && !ops->empty()) self->history_diverged_ = true;  // another op where ours was
          }
          if (!ops) {
            self->state_ = state::unloaded;  // try again from the store
          } else if (!same_history ||
                     (ops->empty() && (check == head_check::refused || !compare_last) && check != head_check::none)) {
            // The store's log is shorter than this copy, holds another op where this copy has its last,
            // or refused a commit at this head with nothing past it: a Redis failover lost ops. Start
            // again from the store: the load finds out, and puts back what it can (on_loaded).
            self->state_ = state::unloaded;
          } else {
            self->apply_remote(std::move(*ops));
          }
          self->drain();
        });
      });
}

void document::answer(submit_entry& entry, const protocol::error_info& error) {
  auto latency = clock::now() - entry.received;
  entry.done(submit_result{error, {}, entry.original.src, entry.original.seq, 0});
  if (auto* obs = owner_.observer()) obs->on_submit_done(latency, &error);
}

bool document::run_batch() {
  pipeline_.begin_batch(owner_.feed() != nullptr, owner_.storage().atomic_batches());
  while (!queue_.empty() && std::holds_alternative<submit_entry>(queue_.front())) {
    auto& entry = std::get<submit_entry>(queue_.front());
    auto offered = pipeline_.offer(entry);
    if (offered.kind == submit_pipeline::offer_kind::full) break;
    if (offered.kind == submit_pipeline::offer_kind::needs_history) {
      load_history(offered.history_from, offered.history_until);
      return false;
    }
    if (offered.kind == submit_pipeline::offer_kind::needs_catch_up) {
      catch_up(offered.history_until);
      return false;
    }
    if (offered.kind == submit_pipeline::offer_kind::answered) answer(entry, *offered.error);
    queue_.pop_front();
  }
  auto plan = pipeline_.seal();
  if (plan.empty) return true;
  if (plan.requests.empty()) {  // resends only: acked at once
    on_batch_committed(clock::now(), {});
    return true;
  }
  busy_ = true;
  const auto started = clock::now();
  if (plan.all_or_nothing) {
    outcomes_.assign(1, {});
    outcomes_pending_ = 1;
    owner_.storage().commit_all(std::move(plan.requests), [self = shared_from_this(), started](std::error_code ec) {
      asio::post(self->executor_, [self, started, ec] {
        self->outcomes_[0] = ec;
        self->outcomes_pending_ = 0;
        self->busy_ = false;
        self->on_batch_committed(started, self->outcomes_);
        self->drain();
      });
    });
    return false;
  }
  // Pipelined: the store completes one document's commits in order.
  outcomes_.assign(plan.requests.size(), {});
  outcomes_pending_ = plan.requests.size();
  for (std::size_t i = 0; i < plan.requests.size(); ++i) {
    owner_.storage().commit(std::move(plan.requests[i]), [self = shared_from_this(), i, started](std::error_code ec) {
      asio::post(self->executor_, [self, i, started, ec] {
        self->outcomes_[i] = ec;
        if (--self->outcomes_pending_ != 0) return;
        self->busy_ = false;
        self->on_batch_committed(started, self->outcomes_);
        self->drain();
      });
    });
  }
  return false;
}

void document::load_history(std::uint64_t from, std::uint64_t until) {
  busy_ = true;
  owner_.storage().load_ops(key_, from, until, [self = shared_from_this()](ot::result<std::vector<op_record>> ops) {
    asio::post(self->executor_, [self, ops = std::move(ops)]() mutable {
      self->busy_ = false;
      auto& entry = std::get<submit_entry>(self->queue_.front());
      if (auto error = self->pipeline_.accept_history(entry, std::move(ops))) {
        self->answer(entry, *error);
        self->queue_.pop_front();
      }
      self->drain();
    });
  });
}

void document::on_batch_committed(clock::time_point started, const std::vector<std::error_code>& outcomes) {
  auto done = pipeline_.complete(outcomes);
  if (!outcomes.empty()) {
    if (auto* obs = owner_.observer()) obs->on_committed(done.committed, clock::now() - started);
  }
  for (auto& a : done.answers) {
    auto latency = clock::now() - a.entry.received;
    const auto error = a.result.error;
    a.entry.done(std::move(a.result));
    if (a.broadcast) broadcast(a.broadcast->record, a.broadcast->frame);
    if (auto* obs = owner_.observer()) obs->on_submit_done(latency, error ? &*error : nullptr);
  }
  for (auto it = done.retries.rbegin(); it != done.retries.rend(); ++it) queue_.push_front(std::move(*it));
  if (done.next == submit_pipeline::next_step::resync) {
    queue_.push_front(resync_request{true});  // read what the other writer committed first
  } else if (done.next == submit_pipeline::next_step::reload) {
    state_ = state::unloaded;
  }
}

bool document::try_evict(clock::time_point idle_since) {
  if (busy_ || !queue_.empty() || !subscribers_.empty() || last_active_ > idle_since) return false;
  evicted_ = true;
  add_resident(-static_cast<std::int64_t>(footprint_));
  footprint_ = 0;
  owner_.forget(this);
  return true;
}

}  // namespace otsync::doc
