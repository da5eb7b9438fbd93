#include "submit_pipeline.hpp"

#include <algorithm>
#include <chrono>

#include "otsync/oplog/error.hpp"
#include "otsync/oplog/rebase.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "otsync/ot/unicode.hpp"
#include "otsync/protocol/errors.hpp"

namespace otsync::doc {
namespace {

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

submit_pipeline::submit_pipeline(store::doc_key key, const document_options& options)
    : key_(std::move(key)), options_(options) {}

// ---- The head and the cache ---------------------------------------------

std::optional<protocol::error_info> submit_pipeline::load(store::loaded_document loaded) {
  auto& base = loaded.base;
  head_version_ = base.version;
  type_uri_ = base.type_uri;
  created_ = base.created;
  text_ = ot::rope(base.data);
  last_snapshot_version_ = base.version;
  last_timestamp_ms_ = std::max(last_timestamp_ms_, loaded.base_timestamp_ms);
  clear_cache();
  for (auto& op : loaded.ops) {
    if (auto error = apply_to_head(op)) {
      clear_cache();
      return protocol::errors::stored_op_does_not_apply(op.version, key_.collection, key_.id, error->message);
    }
    auto frame = encode(op);
    cache_push({std::move(op), std::move(frame)});
  }
  // Callers broadcast the loaded ops their subscribers lack, then trim.
  return std::nullopt;
}

snapshot submit_pipeline::head_snapshot() const {
  snapshot snap;
  snap.version = head_version_;
  snap.type_uri = type_uri_;
  if (type_uri_) snap.data = text_.to_string();
  snap.created = created_;
  return snap;
}

std::vector<shared_frame> submit_pipeline::cached_frames(std::uint64_t from) const {
  std::vector<shared_frame> frames;
  for (std::uint64_t v = std::max(from, recent_base()); v < head_version_; ++v) {
    frames.push_back(recent_[v - recent_base()].frame);
  }
  return frames;
}

shared_frame submit_pipeline::encode(const op_record& op) const {
  if (options_.public_src) {
    return std::make_shared<const std::string>(
        protocol::encode_op_message(key_.collection, key_.id, op, public_src(op.src)));
  }
  return std::make_shared<const std::string>(protocol::encode_op_message(key_.collection, key_.id, op, op.src));
}

const std::string& submit_pipeline::public_src(const std::string& src) const {
  if (auto known = public_srcs_.find(src); known != public_srcs_.end()) return known->second;
  if (public_srcs_.size() >= max_public_srcs) public_srcs_.clear();
  return public_srcs_.emplace(src, options_.public_src(src)).first->second;
}

void submit_pipeline::clear_cache() {
  recent_.clear();
  recent_bytes_ = 0;
  public_srcs_.clear();
}

void submit_pipeline::cache_push(recent_op op) {
  recent_bytes_ += op.frame->size();
  recent_.push_back(std::move(op));
}

void submit_pipeline::trim_cache() {
  // By count and by bytes: large ops (up to --max-op-bytes each) must not pin
  // a thousand of them. Older ops are read from the store when needed.
  while (!recent_.empty() && (recent_.size() > options_.recent_ops || recent_bytes_ > options_.recent_ops_bytes)) {
    recent_bytes_ -= recent_.front().frame->size();
    recent_.pop_front();
  }
}

std::optional<protocol::error_info> submit_pipeline::apply_to_head(op_record& record, committed_state* undo) {
  if (record.version != head_version_) return protocol::errors::version_mismatch_after_transform();
  if (const auto* create = std::get_if<oplog::create_body>(&record.body)) {
    if (type_uri_) return protocol::errors::document_already_exists();
    if (create->data.size() > options_.max_document_bytes) return protocol::errors::document_too_large();
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
    if (!type_uri_) return protocol::to_error_info(oplog::errc::doc_does_not_exist);
    if (input_length(edit) > text_.size()) edit = cut_deletes_at_end(edit, text_.size());
    if (text_.size_bytes() + inserted_bytes(edit) > options_.max_document_bytes) {
      return protocol::errors::document_too_large();
    }
    std::optional<ot::op> inverse;
    if (undo && input_length(edit) <= text_.size()) {  // longer ones fail to apply below
      auto inverted = ot::invert(ot::make_invertible(edit, text_));
      if (inverted) inverse = std::move(*inverted);
    }
    if (auto error = ot::apply(text_, edit)) return protocol::to_error_info(error);
    if (undo) {
      if (inverse) {
        undo->undo.emplace_back(std::move(*inverse));
      } else {
        undo->undo_complete = false;
      }
    }
  }
  ++head_version_;
  last_timestamp_ms_ = std::max(last_timestamp_ms_, record.timestamp_ms);
  return std::nullopt;
}

bool submit_pipeline::roll_back(committed_state& before) {
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

presence_result submit_pipeline::transform_presence(std::uint64_t version, const std::string& src,
                                                    std::optional<ot::selection> range) const {
  presence_result out;
  out.range = range;
  if (version >= head_version_) {
    out.version = version;
    return out;
  }
  out.version = head_version_;
  if (!range) return out;  // nothing to move (a removal, an opaque value): at the head, however old
  if (version < recent_base()) {
    out.error = protocol::errors::presence_too_old(version, recent_base());
    return out;
  }
  for (std::uint64_t v = version; v < head_version_; ++v) {
    const auto& op = recent_[v - recent_base()].record;
    if (const auto* edit = std::get_if<ot::op>(&op.body)) {
      if (out.range) {
        auto next = ot::transform_selection(*out.range, *edit, op.src == src);
        if (next != *out.range) out.moved = true;
        out.range = next;
      }
    } else {  // a create or delete: the presence is gone with the text it pointed into
      out.range.reset();
      out.cleared = true;
    }
  }
  return out;
}

// ---- Ops committed by other instances -------------------------------------

submit_pipeline::remote_outcome submit_pipeline::apply_remote(std::vector<op_record> ops) {
  remote_outcome out;
  for (auto& op : ops) {
    if (op.version < head_version_) continue;
    if (op.version != head_version_ || apply_to_head(op)) {
      clear_cache();
      out.diverged = true;
      return out;
    }
    auto frame = encode(op);
    cache_push({op, frame});
    out.applied.push_back({std::move(op), std::move(frame)});
  }
  trim_cache();
  return out;
}

// ---- Ops the store lost ---------------------------------------------------------

bool submit_pipeline::same_committed_op(const op_record& a, const op_record& b) {
  return a.src == b.src && a.seq == b.seq && a.version == b.version && a.timestamp_ms == b.timestamp_ms &&
         a.body == b.body;
}

std::optional<std::uint64_t> submit_pipeline::first_difference(const store::loaded_document& loaded) const {
  const std::uint64_t from = std::max(loaded.base.version, recent_base());
  const std::uint64_t until = std::min(loaded.version_reached(), head_version_);
  for (auto v = from; v < until; ++v) {
    if (!same_committed_op(loaded.ops[v - loaded.base.version], recent_[v - recent_base()].record)) return v;
  }
  return std::nullopt;
}

bool submit_pipeline::has_committed(const op_record& op) const {
  if (op.version < recent_base() || op.version >= head_version_) return false;
  return same_committed_op(recent_[op.version - recent_base()].record, op);
}

submit_pipeline::lost_ops submit_pipeline::ops_missing_from(const store::loaded_document& loaded,
                                                            std::uint64_t until) const {
  const std::uint64_t stored = loaded.version_reached();
  until = std::min(until, head_version_);
  if (stored >= until || stored < recent_base()) return {};
  lost_ops lost;
  if (stored > 0) {
    // The same history up to the store's head: its last op is ours.
    if (stored - 1 < recent_base()) return {};
    const auto& ours = recent_[stored - 1 - recent_base()].record;
    if (!loaded.ops.empty() && !same_committed_op(loaded.ops.back(), ours)) return {};
    lost.before = ours;
    lost.read_before = loaded.ops.empty();  // a stored snapshot with no op after it: the caller reads that op
  }
  lost.ops.reserve(until - stored);
  for (auto v = stored; v < until; ++v) lost.ops.push_back(recent_[v - recent_base()].record);
  return lost;
}

std::vector<store::commit_request> submit_pipeline::restore(std::vector<op_record> ops) {
  std::vector<store::commit_request> requests;
  requests.reserve(ops.size());
  for (auto& op : ops) {
    if (apply_to_head(op)) {
      clear_cache();
      return {};
    }
    cache_push({op, encode(op)});
    store::commit_request request;
    request.key = key_;
    request.after.version = head_version_;
    request.after.type_uri = type_uri_;
    request.after.created = created_;
    request.op = std::move(op);
    requests.push_back(std::move(request));
  }
  if (!requests.empty()) {
    // The stored snapshot goes with the last one, as a batch's does.
    auto& last = requests.back();
    last.store_snapshot = true;
    if (last.after.type_uri) last.after.data = text_.to_string();
    last_snapshot_version_ = head_version_;
  }
  return requests;
}

// ---- Submit batches ---------------------------------------------------------

void submit_pipeline::begin_batch(bool shared, bool atomic_batches) {
  batch_.clear();
  shared_ = shared;
  batch_base_ = head_version_;
  // With other instances writing too, separate pipelined commits are unsafe:
  // a later op of a batch could land in the version slot another instance's
  // op freed up after an earlier one of ours failed, on top of an op that
  // never committed. So a shared store commits a batch all or nothing (one
  // round trip), or one op at a time when it cannot.
  max_batch_ = shared && !atomic_batches ? 1 : options_.max_batch;
  pre_batch_.reset();
  if (shared) {
    // What to go back to when the commit loses a race: cheaper than a reload.
    pre_batch_ = committed_state{head_version_, type_uri_, created_, {}, true, recent_.size(), last_snapshot_version_};
  }
}

submit_pipeline::offer_result submit_pipeline::offer(submit_entry& entry) {
  if (batch_.size() >= max_batch_) return {offer_kind::full, {}, 0, 0};
  submission pending = entry.original;

  // A create sent without a version (never fetched): a resend when it matches the creator record.
  if (!pending.version && std::holds_alternative<oplog::create_body>(pending.body) && type_uri_) {
    if (created_ && !pending.src.empty() && created_->src == pending.src && created_->seq == pending.seq) {
      // A resend only if it is the same create (see oplog::rebase): compare with the committed one.
      const op_record* original = nullptr;
      if (created_->version >= recent_base() && created_->version < head_version_) {
        original = &recent_[created_->version - recent_base()].record;
      } else {
        for (const auto& op : entry.older_history) {
          if (op.version == created_->version) original = &op;
        }
      }
      if (original == nullptr) {
        if (entry.history_loaded) return {offer_kind::answered, protocol::errors::history_missing_for_submit(), 0, 0};
        if (!batch_.empty()) return {offer_kind::full, {}, 0, 0};
        return {offer_kind::needs_history, {}, created_->version, created_->version + 1};
      }
      if (original->body != pending.body) {
        return {offer_kind::answered, protocol::to_error_info(oplog::errc::seq_reused), 0, 0};
      }
      in_flight done{std::move(entry), {}, {}, true, {}, {}};
      done.committed.src = pending.src;
      done.committed.seq = pending.seq;
      done.committed.version = created_->version;
      batch_.push_back(std::move(done));
      return {offer_kind::batched, {}, 0, 0};
    }
    return {offer_kind::answered, protocol::errors::document_already_exists(), 0, 0};
  }

  const std::uint64_t from = pending.version.value_or(head_version_);
  if (from > head_version_ && shared_ && !entry.caught_up) {
    // Another instance committed ops this copy has not heard of yet (the
    // client saw them there): read them from the log before judging.
    if (!batch_.empty()) return {offer_kind::full, {}, 0, 0};
    entry.caught_up = true;
    return {offer_kind::needs_catch_up, {}, head_version_, from};
  }
  if (from < recent_base() && entry.older_history.size() < recent_base() - from) {
    if (!batch_.empty()) return {offer_kind::full, {}, 0, 0};  // commit what is ready first
    return {offer_kind::needs_history, {}, from, recent_base()};
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
      frames.push_back(op.version >= cache_base ? recent_[op.version - cache_base].frame : encode(op));
    }
    return frames;
  };
  if (!status) return {offer_kind::answered, protocol::to_error_info(status.error()), 0, 0};
  if (*status == oplog::rebase_status::already_submitted) {
    // A resend of an op committed at `pending.version`: ack it, after the
    // ops the client had not seen, so its version matches the ack.
    in_flight done{std::move(entry), {}, missed_frames(*pending.version), true, {}, {}};
    done.committed.src = pending.src;
    done.committed.seq = pending.seq;
    done.committed.version = *pending.version;
    batch_.push_back(std::move(done));
    return {offer_kind::batched, {}, 0, 0};
  }

  // Never before the op under it, even if the clock stepped back (stores
  // answer `nt` by binary search on the time); but a log far ahead of the
  // clock (a clock once set wrong) does not hold every later op's time.
  const std::int64_t now = now_ms();
  const std::int64_t timestamp_ms =
      last_timestamp_ms_ - now <= max_timestamp_lead_ms ? std::max(now, last_timestamp_ms_) : now;
  op_record committed{pending.src, pending.seq, head_version_, std::move(pending.body), timestamp_ms, pending.author};
  auto missed = missed_frames(committed.version);  // before apply_to_head moves recent_base()
  if (auto error = apply_to_head(committed, pre_batch_ ? &*pre_batch_ : nullptr)) {
    return {offer_kind::answered, std::move(error), 0, 0};
  }
  auto frame = encode(committed);
  cache_push({committed, frame});
  in_flight f{std::move(entry), committed, std::move(missed), false, std::move(frame), {}};
  f.request.key = key_;
  f.request.after.version = head_version_;
  f.request.after.type_uri = type_uri_;
  f.request.after.created = created_;
  f.request.op = std::move(committed);
  batch_.push_back(std::move(f));
  return {offer_kind::batched, {}, 0, 0};
}

std::optional<protocol::error_info> submit_pipeline::accept_history(submit_entry& entry,
                                                                    ot::result<std::vector<op_record>> history) const {
  if (!history) return protocol::to_error_info(history.error());
  const std::uint64_t from = entry.original.version.value_or(head_version_);
  if (from < recent_base() && history->size() < recent_base() - from) {
    return protocol::errors::history_missing_for_submit();
  }
  entry.older_history = std::move(*history);
  entry.history_loaded = true;
  return std::nullopt;
}

submit_pipeline::commit_plan submit_pipeline::seal() {
  commit_plan plan;
  plan.empty = batch_.empty();
  all_or_nothing_ = false;
  in_flight* last_commit = nullptr;
  for (auto& f : batch_) {
    if (!f.already_submitted) last_commit = &f;
  }
  if (!last_commit) return plan;

  if (head_version_ - last_snapshot_version_ >= options_.snapshot_interval) {
    last_commit->request.store_snapshot = true;
    if (last_commit->request.after.type_uri) last_commit->request.after.data = text_.to_string();
    last_snapshot_version_ = head_version_;
  }
  for (auto& f : batch_) {
    if (!f.already_submitted) plan.requests.push_back(std::move(f.request));  // holds the snapshot text, if any
  }
  plan.all_or_nothing = all_or_nothing_ = shared_ && plan.requests.size() > 1;
  return plan;
}

submit_pipeline::completion submit_pipeline::complete(const std::vector<std::error_code>& outcomes) {
  completion out;
  const bool all_or_nothing = all_or_nothing_ && !outcomes.empty();
  auto outcome_of = [&](std::size_t commit_index) -> std::optional<std::error_code> {
    if (all_or_nothing) return outcomes.front();
    if (commit_index < outcomes.size()) return outcomes[commit_index];
    return std::nullopt;
  };
  // The versions this batch made durable: [batch_base_, durable_until), up to its first failure.
  std::uint64_t durable_until = batch_base_;
  {
    std::size_t commit_index = 0;
    for (const auto& f : batch_) {
      if (f.already_submitted) continue;
      auto outcome = outcome_of(commit_index++);
      if (!outcome || *outcome) break;
      durable_until = f.committed.version + 1;
    }
  }
  bool broken = false;
  std::size_t next_outcome = 0;
  for (auto& f : batch_) {
    if (f.already_submitted) {
      // A resend of an op committed before this batch, or of one this batch committed: acked at
      // that op's version. A resend of an op of this batch that did not commit is retried, never
      // acked (its original failed or goes back to the queue; the retry then commits it once).
      if (f.committed.version < durable_until) {
        submit_result result{std::nullopt, std::move(f.missed), f.committed.src, f.committed.seq, f.committed.version};
        out.answers.push_back({std::move(f.entry), std::move(result), std::nullopt});
      } else if (f.entry.attempts + 1 < options_.max_submit_retries) {
        ++f.entry.attempts;
        f.entry.older_history.clear();
        out.retries.push_back(std::move(f.entry));
      } else {
        submit_result result{
            protocol::to_error_info(store::errc::version_conflict), {}, f.committed.src, f.committed.seq, 0};
        out.answers.push_back({std::move(f.entry), std::move(result), std::nullopt});
      }
      continue;
    }
    std::optional<std::error_code> outcome = outcome_of(next_outcome);
    ++next_outcome;
    if (!broken && outcome && !*outcome) {
      // The ack first: the author (which never gets its own op's broadcast)
      // can send its next op while the others' copies are still being handed
      // out, and those then leave together in one write per reader. The
      // author's order is kept: the broadcasts of earlier ops were posted first.
      ++out.committed;
      submit_result result{std::nullopt, std::move(f.missed), f.committed.src, f.committed.seq, f.committed.version};
      out.answers.push_back({std::move(f.entry), std::move(result), recent_op{std::move(f.committed), f.frame}});
      continue;
    }
    broken = true;
    std::error_code ec = outcome.value_or(make_error_code(store::errc::version_conflict));
    if (!ec) ec = make_error_code(store::errc::version_conflict);  // committed after a failed op: impossible with CAS
    // With a shared store, an unavailable store may have committed the op
    // after all (a timed-out reply): retrying after the catch-up acks it
    // as a resend if so, and a store still down fails the reload instead.
    const bool retry = ec == store::errc::version_conflict || (pre_batch_ && ec == store::errc::unavailable);
    if (retry && f.entry.attempts + 1 < options_.max_submit_retries) {
      ++f.entry.attempts;
      f.entry.older_history.clear();
      out.retries.push_back(std::move(f.entry));
      continue;
    }
    submit_result result{protocol::to_error_info(ec), {}, f.committed.src, f.committed.seq, 0};
    out.answers.push_back({std::move(f.entry), std::move(result), std::nullopt});
  }
  batch_.clear();
  if (broken) {
    if (pre_batch_ && roll_back(*pre_batch_)) {
      out.next = next_step::resync;  // then read what the other writer committed
    } else {
      out.next = next_step::reload;  // the head holds ops that were not committed
      clear_cache();
    }
  }
  pre_batch_.reset();
  trim_cache();
  return out;
}

}  // namespace otsync::doc
