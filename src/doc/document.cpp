#include "otsync/doc/document.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>

#include "otsync/oplog/error.hpp"
#include "otsync/oplog/rebase.hpp"
#include "otsync/doc/registry.hpp"
#include "otsync/doc/store_error_info.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "otsync/ot/unicode.hpp"

namespace otsync::doc {
namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

protocol::error_info to_error_info(std::error_code error) {
  if (error.category() == oplog::error_category()) {
    return {std::string(oplog::sharedb_code(static_cast<oplog::errc>(error.value()))), error.message()};
  }
  if (error.category() == store::error_category()) return store_error_info(error);
  // OT errors: the op cannot be applied (ShareDB: ERR_OT_OP_NOT_APPLIED with the type's message).
  return {"ERR_OT_OP_NOT_APPLIED", error.message()};
}

protocol::error_info queue_full_error() {
  return {"ERR_SERVER_BUSY", "Too many requests queued for this document; retry later"};
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Skips and deletes beyond the end: JS ot-text-unicode cuts such deletes short,
// but walks a huge one step by step; refusing them keeps every replica safe.
std::uint64_t input_length(const ot::op& edit) {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < edit.size(); ++i) {
    auto part = edit[i].view();
    if (part.kind != ot::component_kind::insert) total += part.length;
  }
  return total;
}

// ot-text-unicode cuts deletes that run past the end of the document short.
// The committed op is the cut one, so every replica applies exactly what the
// server applied, and no client walks a huge delete one step at a time.
ot::op cut_deletes_at_end(const ot::op& edit, std::uint64_t length) {
  bool cut = false;
  std::uint64_t pos = 0;
  for (std::size_t i = 0; i < edit.size() && !cut; ++i) {
    auto part = edit[i].view();
    if (part.kind == ot::component_kind::erase && pos + part.length > length) cut = true;
    if (part.kind != ot::component_kind::insert) pos += part.length;
  }
  if (!cut) return edit;
  ot::op_builder out(edit.size());
  pos = 0;
  for (std::size_t i = 0; i < edit.size(); ++i) {
    auto part = edit[i].view();
    if (part.kind == ot::component_kind::erase) {
      std::uint64_t keep = std::min(part.length, pos < length ? length - pos : 0);
      if (part.has_text) {
        out.erase_text(ot::unicode::substr(part.text, 0, keep), keep);
      } else {
        out.erase(keep);
      }
      pos += keep;
      continue;
    }
    out.append(part);
    if (part.kind == ot::component_kind::skip) pos += part.length;
  }
  return std::move(out).finish();
}

std::uint64_t inserted_bytes(const ot::op& edit) {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < edit.size(); ++i) {
    auto part = edit[i].view();
    if (part.kind == ot::component_kind::insert) total += part.text.size();
  }
  return total;
}

}  // namespace

document::document(asio::any_io_executor executor, registry& owner, store::doc_key key)
    : strand_(asio::make_strand(std::move(executor))),
      owner_(owner),
      key_(std::move(key)),
      last_active_(clock::now()) {}

document::~document() {
  if (footprint_ != 0) owner_.add_resident(-static_cast<std::int64_t>(footprint_));
}

void document::fetch(std::optional<std::uint64_t> from, read_handler done) {
  enqueue(read_request{nullptr, from, std::move(done)});
}

void document::subscribe(std::shared_ptr<subscriber> who, std::optional<std::uint64_t> from, read_handler done) {
  enqueue(read_request{std::move(who), from, std::move(done)});
}

void document::unsubscribe(const subscriber* who, std::function<void()> done) {
  enqueue(unsubscribe_request{who, std::move(done)});
}

void document::submit(submission op, submit_handler done) {
  enqueue(submit_entry{std::move(op), std::move(done), clock::now(), 0, {}});
}

void document::enqueue(request r) {
  asio::post(strand_, [self = shared_from_this(), r = std::move(r)]() mutable {
    if (self->evicted_) {
      // This instance left the registry; the live one takes the request.
      self->owner_.get(self->key_)->enqueue(std::move(r));
      return;
    }
    if (self->queue_.size() >= self->owner_.options().max_queue) {
      if (auto* read = std::get_if<read_request>(&r)) {
        read->done(read_result{queue_full_error(), std::nullopt, {}});
        return;
      }
      if (auto* sub = std::get_if<submit_entry>(&r)) {
        sub->done(submit_result{queue_full_error(), {}, sub->original.src, sub->original.seq, 0});
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
        queue_.pop_front();  // the load brings everything
        continue;
      }
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
      if (op.version < head_version_) continue;  // ours, or already caught up
      if (op.version > head_version_) {
        catch_up(op.version + 1);  // a gap: read the missing ops from the log first
        break;
      }
      std::vector<op_record> one;
      one.push_back(std::move(op));
      apply_remote(std::move(one));
      continue;
    }
    if (std::holds_alternative<resync_request>(front)) {
      queue_.pop_front();
      catch_up(std::nullopt);
      break;
    }
    if (auto* read = std::get_if<read_request>(&front)) {
      if (read->from && *read->from < recent_base()) {
        // Older than the cache: read the gap from the store, then serve.
        busy_ = true;
        std::uint64_t from = *read->from;
        owner_.storage().load_ops(
            key_, from, recent_base(), [self = shared_from_this(), from](ot::result<std::vector<op_record>> ops) {
              asio::post(self->strand_, [self, from, ops = std::move(ops)]() mutable {
                self->busy_ = false;
                auto r = std::get<read_request>(std::move(self->queue_.front()));
                self->queue_.pop_front();
                if (!ops) {
                  r.done(read_result{to_error_info(ops.error()), std::nullopt, {}});
                } else if (ops->size() != self->recent_base() - from) {
                  r.done(read_result{
                      protocol::error_info{"ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND", "Missing operations in the op log"},
                      std::nullopt,
                      {}});
                } else {
                  read_result result;
                  for (const auto& op : *ops) {
                    result.ops.push_back(std::make_shared<const std::string>(
                        protocol::encode_op_message(self->key_.collection, self->key_.id, op)));
                  }
                  for (const auto& op : self->recent_) result.ops.push_back(op.frame);
                  if (r.who) self->add_subscriber(r.who);
                  r.done(std::move(result));
                }
                self->drain();
              });
            });
        break;
      }
      serve_read(*read);
      queue_.pop_front();
      continue;
    }
    if (!prepare_batch()) break;
  }
  // With a feed but no subscription to it, this copy may fall behind other instances.
  if (!busy_ && queue_.empty() && owner_.feed() && !feed_token_ && state_ == state::ready) stale_ = true;
  update_busy_flag();
  update_footprint();
  // A document that does not exist and that nobody follows holds nothing worth keeping: let it go
  // now, so that reads of many made-up ids do not fill memory until the idle sweep.
  if (!busy_ && queue_.empty() && subscribers_.empty() && state_ == state::ready && head_version_ == 0 && !type_uri_) {
    try_evict(clock::now());
  }
}

void document::update_footprint() {
  // The text, the cached ops (each held as a record and as its encoded frame), and the actor itself.
  constexpr std::size_t actor_bytes = 2048;
  std::size_t now = state_ == state::unloaded ? 0 : actor_bytes + text_.size_bytes() + 2 * recent_bytes_;
  if (now != footprint_) {
    owner_.add_resident(static_cast<std::int64_t>(now) - static_cast<std::int64_t>(footprint_));
    footprint_ = now;
  }
}

void document::serve_read(read_request& r) {
  read_result result;
  if (!r.from) {
    result.snap = head_snapshot();
  } else {
    for (std::uint64_t v = std::max(*r.from, recent_base()); v < head_version_; ++v) {
      result.ops.push_back(recent_[v - recent_base()].frame);
    }
  }
  if (r.who) add_subscriber(r.who);
  r.done(std::move(result));
}

snapshot document::head_snapshot() const {
  snapshot snap;
  snap.version = head_version_;
  snap.type_uri = type_uri_;
  if (type_uri_) snap.data = text_.to_string();
  snap.created = created_;
  return snap;
}

void document::start_load() {
  if (state_ == state::loading) return;
  if (owner_.over_budget()) {
    // Open documents hold --max-open-document-bytes already: make room (idle ones go), and refuse
    // this load meanwhile rather than let the process grow without bound.
    owner_.relieve_memory();
    fail_queue(
        {"ERR_MEMORY_BUDGET_EXCEEDED", "The server holds as many documents in memory as it may; retry in a moment"});
    update_busy_flag();
    try_evict(clock::now());  // nothing loaded: this shell need not wait for the idle sweep
    return;
  }
  state_ = state::loading;
  busy_ = true;
  owner_.storage().load(key_, std::nullopt, [self = shared_from_this()](ot::result<store::loaded_document> loaded) {
    asio::post(self->strand_, [self, loaded = std::move(loaded)]() mutable {
      self->busy_ = false;
      if (!loaded) {
        self->state_ = state::unloaded;
        self->fail_queue(to_error_info(loaded.error()));
        self->update_busy_flag();
        return;
      }
      // Replay the ops after the stored snapshot onto the rope.
      auto& base = loaded->base;
      self->head_version_ = base.version;
      self->type_uri_ = base.type_uri;
      self->created_ = base.created;
      self->text_ = ot::rope(base.data);
      self->last_snapshot_version_ = base.version;
      self->cache_clear();
      for (auto& op : loaded->ops) {
        if (auto error = self->apply_to_head(op)) {
          self->state_ = state::unloaded;
          self->fail_queue({"ERR_DATABASE_CORRUPT", "Stored op " + std::to_string(op.version) + " of " +
                                                        self->key_.collection + "/" + self->key_.id +
                                                        " does not apply: " + error->message});
          self->update_busy_flag();
          return;
        }
        auto frame =
            std::make_shared<const std::string>(protocol::encode_op_message(self->key_.collection, self->key_.id, op));
        self->cache_push({std::move(op), std::move(frame)});
      }
      // Subscribers (kept across a reload) get the ops committed elsewhere meanwhile.
      if (!self->subscribers_.empty()) {
        for (const auto& r : self->recent_) {
          if (r.record.version >= self->broadcast_version_) self->broadcast(r.record, r.frame);
        }
      }
      self->broadcast_version_ = std::max(self->broadcast_version_, self->head_version_);
      self->cache_trim();
      self->state_ = state::ready;
      self->drain();
    });
  });
}

void document::fail_queue(const protocol::error_info& error) {
  while (!queue_.empty()) {
    auto r = std::move(queue_.front());
    queue_.pop_front();
    if (auto* read = std::get_if<read_request>(&r)) {
      read->done(read_result{error, std::nullopt, {}});
    } else if (auto* sub = std::get_if<submit_entry>(&r)) {
      auto latency = clock::now() - sub->received;
      sub->done(submit_result{error, {}, sub->original.src, sub->original.seq, 0});
      if (auto* obs = owner_.observer()) obs->on_submit_done(latency, &error);
    } else if (auto* unsub = std::get_if<unsubscribe_request>(&r)) {
      remove_subscriber(unsub->who);
      if (unsub->done) unsub->done();
    }
  }
}

void document::add_subscriber(const std::shared_ptr<subscriber>& who) {
  if (std::find(subscribers_.begin(), subscribers_.end(), who) != subscribers_.end()) return;
  subscribers_.push_back(who);
  auto* feed = owner_.feed();
  if (!feed || feed_token_) return;
  // Ops from other instances, while this instance has subscribers.
  std::weak_ptr<document> weak = weak_from_this();
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
  for (const auto& s : subscribers_) s->on_op(frame, op.src);
  broadcast_version_ = op.version + 1;
}

void document::apply_remote(std::vector<op_record> ops) {
  for (auto& op : ops) {
    if (op.version < head_version_) continue;
    if (op.version != head_version_ || apply_to_head(op)) {
      // The log disagrees with this copy: start again from the store.
      state_ = state::unloaded;
      cache_clear();
      return;
    }
    auto frame = std::make_shared<const std::string>(protocol::encode_op_message(key_.collection, key_.id, op));
    cache_push({op, frame});
    broadcast(op, frame);
  }
  cache_trim();
}

void document::catch_up(std::optional<std::uint64_t> until) {
  busy_ = true;
  owner_.storage().load_ops(key_, head_version_, until,
                            [self = shared_from_this()](ot::result<std::vector<op_record>> ops) {
                              asio::post(self->strand_, [self, ops = std::move(ops)]() mutable {
                                self->busy_ = false;
                                if (ops) {
                                  self->apply_remote(std::move(*ops));
                                } else {
                                  self->state_ = state::unloaded;  // try again from the store
                                }
                                self->drain();
                              });
                            });
}

std::optional<protocol::error_info> document::apply_to_head(op_record& record, committed_state* undo) {
  if (record.version != head_version_) {
    return protocol::error_info{"ERR_OP_VERSION_MISMATCH_AFTER_TRANSFORM", "Version mismatch"};
  }
  if (const auto* create = std::get_if<oplog::create_body>(&record.body)) {
    if (type_uri_) return protocol::error_info{"ERR_DOC_ALREADY_CREATED", "Document already exists"};
    if (create->data.size() > owner_.options().max_document_bytes) {
      return protocol::error_info{"ERR_OT_OP_NOT_APPLIED", "Document would exceed the size limit"};
    }
    type_uri_ = create->type_uri;
    if (undo) undo->undo.emplace_back(std::move(text_));
    text_ = ot::rope(create->data);
    created_ = create_record{record.src, record.seq, record.version};
  } else if (std::holds_alternative<oplog::delete_body>(record.body)) {
    type_uri_.reset();
    if (undo) undo->undo.emplace_back(std::move(text_));
    text_.clear();
  } else {
    auto& edit = std::get<ot::op>(record.body);
    if (!type_uri_) return protocol::error_info{"ERR_DOC_DOES_NOT_EXIST", "Document does not exist"};
    if (input_length(edit) > text_.size()) edit = cut_deletes_at_end(edit, text_.size());
    if (text_.size_bytes() + inserted_bytes(edit) > owner_.options().max_document_bytes) {
      return protocol::error_info{"ERR_OT_OP_NOT_APPLIED", "Document would exceed the size limit"};
    }
    std::optional<ot::op> inverse;
    if (undo && input_length(edit) <= text_.size()) {  // longer ones fail to apply below
      auto inverted = ot::invert(ot::make_invertible(edit, text_));
      if (inverted) inverse = std::move(*inverted);
    }
    if (auto error = ot::apply(text_, edit)) return protocol::error_info{"ERR_OT_OP_NOT_APPLIED", error.message()};
    if (undo) {
      if (inverse) {
        undo->undo.emplace_back(std::move(*inverse));
      } else {
        undo->undo_complete = false;
      }
    }
  }
  ++head_version_;
  return std::nullopt;
}

bool document::prepare_batch() {
  batch_.clear();
  const auto& options = owner_.options();
  // With other instances writing too, separate pipelined commits are unsafe:
  // a later op of a batch could land in the version slot another instance's
  // op freed up after an earlier one of ours failed, on top of an op that
  // never committed. So a shared store commits a batch all or nothing (one
  // round trip), or one op at a time when it cannot.
  const bool shared = owner_.feed() != nullptr;
  const std::size_t max_batch = shared && !owner_.storage().atomic_batches() ? 1 : options.max_batch;
  if (shared) {
    // What to go back to when the commit loses a race: cheaper than a reload.
    pre_batch_ = committed_state{head_version_, type_uri_, created_, {}, true, recent_.size(), last_snapshot_version_};
  }
  while (!queue_.empty() && std::holds_alternative<submit_entry>(queue_.front()) && batch_.size() < max_batch) {
    auto& entry = std::get<submit_entry>(queue_.front());
    submission pending = entry.original;

    // A create sent without a version (never fetched): a resend when it matches the creator record.
    if (!pending.version && std::holds_alternative<oplog::create_body>(pending.body) && type_uri_) {
      if (created_ && !pending.src.empty() && created_->src == pending.src && created_->seq == pending.seq) {
        in_flight done{std::move(entry), {}, {}, true, std::error_code{}, {}, {}};
        done.committed.src = pending.src;
        done.committed.seq = pending.seq;
        done.committed.version = created_->version;
        batch_.push_back(std::move(done));
      } else {
        auto latency = clock::now() - entry.received;
        protocol::error_info error{"ERR_DOC_ALREADY_CREATED", "Document already exists"};
        entry.done(submit_result{error, {}, pending.src, pending.seq, 0});
        if (auto* obs = owner_.observer()) obs->on_submit_done(latency, &error);
      }
      queue_.pop_front();
      continue;
    }

    std::uint64_t from = pending.version.value_or(head_version_);
    if (from < recent_base() && entry.older_history.size() < recent_base() - from) {
      if (!batch_.empty()) break;  // commit what is ready first
      busy_ = true;
      std::uint64_t needed = recent_base() - from;
      owner_.storage().load_ops(key_, from, recent_base(), [self = shared_from_this(), needed](auto ops) {
        asio::post(self->strand_, [self, needed, ops = std::move(ops)]() mutable {
          self->busy_ = false;
          auto& e = std::get<submit_entry>(self->queue_.front());
          std::optional<protocol::error_info> error;
          if (!ops) {
            error = to_error_info(ops.error());
          } else if (ops->size() < needed) {
            error = protocol::error_info{"ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND",
                                         "The op log lacks the ops this op must be transformed against"};
          } else {
            e.older_history = std::move(*ops);
          }
          if (error) {
            e.done(submit_result{*error, {}, e.original.src, e.original.seq, 0});
            self->queue_.pop_front();
          }
          self->drain();
        });
      });
      return false;
    }

    // The committed ops since the submission's version, oldest first.
    std::vector<op_record> history;
    if (from < head_version_) {
      history.reserve(head_version_ - from);
      if (from < recent_base()) {
        for (const auto& op : entry.older_history) {
          if (op.version >= from && op.version < recent_base()) history.push_back(op);
        }
      }
      for (std::uint64_t v = std::max(from, recent_base()); v < head_version_; ++v) {
        history.push_back(recent_[v - recent_base()].record);
      }
    }
    auto status = oplog::rebase(pending, history, head_version_);
    // The cache's first version now: `apply_to_head` below moves the head
    // before the committed op joins the cache, so `recent_base()` would be
    // one too high by the time the frames are gathered.
    const std::uint64_t cache_base = recent_base();
    auto missed_frames = [&](std::uint64_t until) {
      std::vector<shared_frame> frames;
      for (const auto& op : history) {
        if (op.version >= until) break;
        if (op.version >= cache_base) {
          frames.push_back(recent_[op.version - cache_base].frame);
        } else {
          frames.push_back(
              std::make_shared<const std::string>(protocol::encode_op_message(key_.collection, key_.id, op)));
        }
      }
      return frames;
    };
    if (!status) {
      auto latency = clock::now() - entry.received;
      auto error = to_error_info(status.error());
      entry.done(submit_result{error, {}, pending.src, pending.seq, 0});
      if (auto* obs = owner_.observer()) obs->on_submit_done(latency, &error);
      queue_.pop_front();
      continue;
    }
    if (*status == oplog::rebase_status::already_submitted) {
      // A resend of an op committed at `pending.version`: ack it, after the
      // ops the client had not seen, so its version matches the ack.
      in_flight done{std::move(entry), {}, missed_frames(*pending.version), true, std::error_code{}, {}, {}};
      done.committed.src = pending.src;
      done.committed.seq = pending.seq;
      done.committed.version = *pending.version;
      batch_.push_back(std::move(done));
      queue_.pop_front();
      continue;
    }

    op_record committed{pending.src, pending.seq, head_version_, std::move(pending.body), now_ms()};
    auto missed = missed_frames(committed.version);  // before apply_to_head moves recent_base()
    if (auto error = apply_to_head(committed, pre_batch_ ? &*pre_batch_ : nullptr)) {
      auto latency = clock::now() - entry.received;
      entry.done(submit_result{*error, {}, committed.src, committed.seq, 0});
      if (auto* obs = owner_.observer()) obs->on_submit_done(latency, &*error);
      queue_.pop_front();
      continue;
    }
    auto frame = std::make_shared<const std::string>(protocol::encode_op_message(key_.collection, key_.id, committed));
    in_flight f{std::move(entry), committed, std::move(missed), false, std::nullopt, {}, frame};
    f.request.key = key_;
    f.request.after.version = head_version_;
    f.request.after.type_uri = type_uri_;
    f.request.after.created = created_;
    f.request.op = std::move(committed);
    cache_push({f.request.op, std::move(frame)});
    batch_.push_back(std::move(f));
    queue_.pop_front();
  }
  if (batch_.empty()) return true;

  // Send the commits, in order; the store completes them in order.
  batch_pending_ = 0;
  in_flight* last_commit = nullptr;
  for (auto& f : batch_) {
    if (!f.already_submitted) {
      ++batch_pending_;
      last_commit = &f;
    }
  }
  if (batch_pending_ == 0) {
    finish_batch();
    return true;
  }
  if (head_version_ - last_snapshot_version_ >= owner_.options().snapshot_interval) {
    last_commit->request.store_snapshot = true;
    if (last_commit->request.after.type_uri) last_commit->request.after.data = text_.to_string();
    last_snapshot_version_ = head_version_;
  }
  busy_ = true;
  auto started = clock::now();
  if (shared && batch_pending_ > 1) {
    std::vector<store::commit_request> requests;
    requests.reserve(batch_pending_);
    for (auto& f : batch_) {
      if (!f.already_submitted) requests.push_back(std::move(f.request));  // holds the snapshot text, if any
    }
    batch_pending_ = 1;
    owner_.storage().commit_all(std::move(requests), [self = shared_from_this(), started](std::error_code ec) {
      asio::post(self->strand_, [self, started, ec] {
        for (auto& f : self->batch_) {
          if (!f.already_submitted) f.outcome = ec;
        }
        self->batch_pending_ = 0;
        self->on_batch_committed(started);
      });
    });
    return false;
  }
  for (std::size_t i = 0; i < batch_.size(); ++i) {
    if (batch_[i].already_submitted) continue;
    owner_.storage().commit(std::move(batch_[i].request), [self = shared_from_this(), i, started](std::error_code ec) {
      asio::post(self->strand_, [self, i, started, ec] {
        self->batch_[i].outcome = ec;
        if (--self->batch_pending_ == 0) self->on_batch_committed(started);
      });
    });
  }
  return false;
}

void document::on_batch_committed(clock::time_point started) {
  std::size_t ok = 0;
  for (const auto& f : batch_) {
    if (!f.already_submitted && f.outcome && !*f.outcome) ++ok;
  }
  if (auto* obs = owner_.observer()) obs->on_committed(ok, clock::now() - started);
  finish_batch();
  drain();
}

void document::finish_batch() {
  busy_ = false;
  bool broken = false;
  std::vector<submit_entry> retries;
  for (auto& f : batch_) {
    auto latency = clock::now() - f.entry.received;
    if (f.already_submitted) {
      f.entry.done(
          submit_result{std::nullopt, std::move(f.missed), f.committed.src, f.committed.seq, f.committed.version});
      if (auto* obs = owner_.observer()) obs->on_submit_done(latency, nullptr);
      continue;
    }
    if (!broken && f.outcome && !*f.outcome) {
      // The ack first: the author (which never gets its own op's broadcast)
      // can send its next op while the others' copies are still being handed
      // out, and those then leave together in one write per reader. The
      // author's order is kept: the broadcasts of earlier ops were posted first.
      f.entry.done(
          submit_result{std::nullopt, std::move(f.missed), f.committed.src, f.committed.seq, f.committed.version});
      broadcast(f.committed, f.frame);
      if (auto* obs = owner_.observer()) obs->on_submit_done(latency, nullptr);
      continue;
    }
    broken = true;
    std::error_code ec = f.outcome.value_or(make_error_code(store::errc::version_conflict));
    if (!ec) ec = make_error_code(store::errc::version_conflict);  // committed after a failed op: impossible with CAS
    // With a shared store, an unavailable store may have committed the op
    // after all (a timed-out reply): retrying after the catch-up acks it
    // as a resend if so, and a store still down fails the reload instead.
    const bool retry = ec == store::errc::version_conflict || (pre_batch_ && ec == store::errc::unavailable);
    if (retry && f.entry.attempts + 1 < owner_.options().max_submit_retries) {
      ++f.entry.attempts;
      f.entry.older_history.clear();
      retries.push_back(std::move(f.entry));
      continue;
    }
    auto error = to_error_info(ec);
    f.entry.done(submit_result{error, {}, f.committed.src, f.committed.seq, 0});
    if (auto* obs = owner_.observer()) obs->on_submit_done(latency, &error);
  }
  batch_.clear();
  if (broken) {
    for (auto it = retries.rbegin(); it != retries.rend(); ++it) queue_.push_front(std::move(*it));
    if (pre_batch_ && roll_back(*pre_batch_)) {
      // Then read what the other writer committed.
      queue_.push_front(resync_request{});
    } else {
      // The live copy holds ops that were not committed: reload it from the store.
      state_ = state::unloaded;
      cache_clear();
    }
  }
  pre_batch_.reset();
  cache_trim();
}

bool document::roll_back(committed_state& before) {
  if (!before.undo_complete) return false;
  for (auto step = before.undo.rbegin(); step != before.undo.rend(); ++step) {
    if (auto* inverse = std::get_if<ot::op>(&*step)) {
      if (ot::apply(text_, *inverse)) return false;
    } else {
      text_ = std::move(std::get<ot::rope>(*step));
    }
  }
  head_version_ = before.version;
  type_uri_ = std::move(before.type_uri);
  created_ = std::move(before.created);
  last_snapshot_version_ = before.last_snapshot_version;
  while (recent_.size() > before.recent_size) {
    recent_bytes_ -= recent_.back().frame->size();
    recent_.pop_back();
  }
  return true;
}

void document::cache_push(recent_op op) {
  recent_bytes_ += op.frame->size();
  recent_.push_back(std::move(op));
}

void document::cache_clear() {
  recent_.clear();
  recent_bytes_ = 0;
}

void document::cache_trim() {
  // By count and by bytes: large ops (up to --max-op-bytes each) must not pin
  // a thousand of them. Older ops are read from the store when needed.
  const auto& options = owner_.options();
  while (!recent_.empty() && (recent_.size() > options.recent_ops || recent_bytes_ > options.recent_ops_bytes)) {
    recent_bytes_ -= recent_.front().frame->size();
    recent_.pop_front();
  }
}

bool document::try_evict(clock::time_point idle_since) {
  if (busy_ || !queue_.empty() || !subscribers_.empty() || last_active_ > idle_since) return false;
  evicted_ = true;
  owner_.add_resident(-static_cast<std::int64_t>(footprint_));
  footprint_ = 0;
  owner_.forget(this);
  return true;
}

}  // namespace otsync::doc
