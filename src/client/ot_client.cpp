#include "otsync/client/ot_client.hpp"

#include "otsync/oplog/error.hpp"
#include "otsync/ot/text_unicode.hpp"

namespace otsync::client {
namespace {

/// Transforms a local op and a remote op past each other; local ops win ties
/// (`left`), as in ShareDB's client, matching the server's `left` for the
/// submission.
std::error_code transform_pair(ot::op& local, ot::op& remote) {
  auto local_moved = ot::transform(local, remote, ot::side::left);
  if (!local_moved) return local_moved.error();
  auto remote_moved = ot::transform(remote, local, ot::side::right);
  if (!remote_moved) return remote_moved.error();
  local = std::move(*local_moved);
  remote = std::move(*remote_moved);
  return {};
}

}  // namespace

ot_client::ot_client(std::string src, std::uint64_t version, std::string_view text)
    : src_(std::move(src)), version_(version), text_(text) {}

ot_client::ot_client(const replica_state& saved)
    : src_(saved.src),
      version_(saved.version),
      text_(saved.text),
      inflight_(saved.inflight),
      inflight_seq_(saved.inflight ? saved.inflight_seq : 0),
      pending_(saved.pending) {}

replica_state ot_client::state() const {
  return {src_, version_, text_.to_string(), inflight_, inflight_ ? inflight_seq_ : 0, pending_};
}

bool ot_client::adopt_src(std::string src) {
  if (inflight_) return false;
  src_ = std::move(src);
  return true;
}

std::error_code ot_client::submit(const ot::op& edit) {
  // As ShareDB's client: normalise first, so [0,"a"] or [3] are accepted as JS accepts them.
  ot::op normalized = ot::normalize(edit);
  if (auto error = ot::validate(normalized)) return error;
  // Compose before applying: a failure must leave text and pending op in step.
  std::optional<ot::op> next_pending = normalized;
  if (pending_) {
    auto composed = ot::compose(*pending_, normalized);
    if (!composed) return composed.error();
    next_pending = std::move(*composed);
  }
  if (auto error = ot::apply(text_, normalized)) return error;  // leaves text_ unchanged on error
  pending_ = std::move(next_pending);
  return {};
}

std::optional<outgoing_op> ot_client::flush(std::uint64_t& next_seq) {
  if (inflight_ && inflight_sent_) return std::nullopt;
  if (inflight_) {
    inflight_sent_ = true;
    return outgoing_op{src_, inflight_seq_, version_, *inflight_, true};
  }
  if (!pending_) return std::nullopt;
  inflight_ = std::move(*pending_);
  pending_.reset();
  inflight_seq_ = next_seq++;
  inflight_sent_ = true;
  return outgoing_op{src_, inflight_seq_, version_, *inflight_, false};
}

ot::result<receive_result> ot_client::receive(const oplog::op_record& record, ot::op* applied) {
  if (inflight_ && record.src == src_ && record.seq == inflight_seq_) {
    if (auto error = acknowledge(record.version)) return error;
    return receive_result::acknowledged;
  }
  if (record.version > version_) return receive_result::gap;
  if (record.version < version_) return receive_result::duplicate;
  const auto* edit = std::get_if<ot::op>(&record.body);
  if (edit == nullptr) return oplog::errc::doc_was_deleted;  // creates/deletes: the caller reloads
  // Work on copies so a failure changes nothing; the caller then reloads (ShareDB's hard rollback).
  ot::op remote = *edit;
  std::optional<ot::op> inflight = inflight_;
  std::optional<ot::op> pending = pending_;
  if (inflight) {
    if (auto error = transform_pair(*inflight, remote)) return error;
  }
  if (pending) {
    if (auto error = transform_pair(*pending, remote)) return error;
  }
  if (auto error = ot::apply(text_, remote)) return error;
  inflight_ = std::move(inflight);
  pending_ = std::move(pending);
  ++version_;
  if (applied != nullptr) *applied = std::move(remote);
  return receive_result::applied;
}

std::error_code ot_client::acknowledge(std::uint64_t version) {
  if (!inflight_) return oplog::errc::version_mismatch;
  // The server sends every op before the ack first, so the ack's version is ours.
  if (version != version_) return oplog::errc::version_mismatch;
  inflight_.reset();
  inflight_sent_ = false;
  ++version_;
  return {};
}

}  // namespace otsync::client
