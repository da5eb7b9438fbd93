#include "client_core.hpp"

#include <nlohmann/json.hpp>

#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/json_parse.hpp"
#include "otsync/protocol/op_json.hpp"

namespace otsync::client {
namespace {

using protocol::server_action;

/// Sequence numbers are recorded as used in blocks, so the journal is not
/// written for every op; a restart skips the rest of the block.
constexpr std::uint64_t seq_block = 1000;

std::string doc_request(std::string_view action, const doc_entry& doc, std::optional<std::uint64_t> version) {
  std::string frame;
  protocol::encode_doc_request(frame, action, doc.collection, doc.id, version);
  return frame;
}

/// The op of an `op` message, checked as `op_from_json` checks it.
ot::result<ot::op> read_op(protocol::server_message& message) {
  if (message.op_read) {
    if (auto error = ot::validate(message.op)) return error;
    return std::move(message.op);
  }
  // Not the common form (or not an op at all): the DOM reader gives the exact error.
  return protocol::op_from_json(protocol::parse_json_bounded(message.op_raw));
}

}  // namespace

client_core::client_core(replica_journal* journal, client_events& startup_errors, client_core_options options)
    : journal_(journal), options_(options) {
  if (journal_ == nullptr) return;
  try {
    if (auto identity = journal_->load_identity()) {
      src_ = identity->src;
      next_seq_ = reserved_seq_ = std::max<std::uint64_t>(identity->next_seq, 1);
    }
  } catch (const std::exception& e) {
    report(nullptr, "OTSYNC_CLIENT_OFFLINE_QUEUE", e.what(), startup_errors);
  }
}

std::string client_core::on_open() {
  std::string frame;
  protocol::encode_handshake(frame, src_);
  return frame;
}

void client_core::send_op(doc_entry& doc, const outgoing_op& op, outbox& out) {
  // `src` always goes explicitly in our style: a replica resumed from disk may carry an older connection id.
  std::string frame;
  frame.reserve(128 + doc.collection.size() + doc.id.size() + op.src.size() + 4 * op.op.size());
  protocol::encode_submit(frame, options_.style, doc.collection, doc.id, op.version, op.seq, op.src, op.resend, op.op);
  out.push_back(std::move(frame));
  if (options_.observer != nullptr) options_.observer->op_sent(doc, op);
}

void client_core::on_disconnected(client_events& events) {
  connected_ = false;
  for (auto& [key, doc] : docs_) {
    doc->subscribed = doc->fetching = doc->reloading = false;
    if (doc->presence) {
      // Who left meanwhile is not known: the others show themselves again after the resubscribe.
      doc->presence->subscribed = false;
      doc->presence->waits.clear();
      clear_presences(*doc, false, events);
    }
    // A create whose ack was lost: the resubscribe shows whether it was committed, else it is sent again.
    doc->create_seq = 0;
    if (doc->replica) doc->replica->disconnected();
  }
}

doc_entry* client_core::find(std::string_view collection, std::string_view id) {
  auto it = docs_.find(std::make_pair(collection, id));
  return it == docs_.end() ? nullptr : it->second.get();
}

doc_entry& client_core::open(const std::string& collection, const std::string& id,
                             std::optional<std::string> create_with, outbox& out, client_events& events) {
  if (doc_entry* existing = find(collection, id)) return *existing;
  auto entry = std::make_unique<doc_entry>();
  entry->collection = collection;
  entry->id = id;
  entry->create_with = std::move(create_with);
  if (journal_ != nullptr) {
    try {
      if (auto saved = journal_->load(collection, id)) {
        entry->replica = std::make_unique<ot_client>(*saved);
        entry->loaded = true;
      }
    } catch (const std::exception& e) {
      report(entry.get(), "OTSYNC_CLIENT_OFFLINE_QUEUE", e.what(), events);
    }
  }
  doc_entry& doc = *entry;
  docs_.emplace(std::make_pair(collection, id), std::move(entry));
  if (connected_) start_document(doc, out);
  return doc;
}

void client_core::start_document(doc_entry& doc, outbox& out) {
  // As sharedb's client after a reconnect: the op in flight first (same src
  // and seq, so the server acks it once), then the subscribe from our version.
  if (doc.replica) {
    if (!doc.replica->has_inflight() && doc.replica->src() != src_) doc.replica->adopt_src(src_);
    std::uint64_t unused = 0;
    if (doc.replica->has_inflight()) {
      if (auto resend = doc.replica->flush(unused)) send_op(doc, *resend, out);
    }
  }
  if (doc.fetch_only) {
    doc.reloading = false;
    fetch(doc, false, out);
    return;
  }
  out.push_back(doc_request("s", doc, doc.replica ? std::optional(doc.replica->version()) : std::nullopt));
  if (doc.presence) send_presence_subscribe(doc, out);
}

std::uint64_t client_core::take_seq(client_events& events) {
  if (journal_ != nullptr && next_seq_ >= reserved_seq_) {
    // Record the block as used before any of it goes out: after a restart a
    // reused (src, seq) would be taken for a resend and silently dropped.
    try {
      journal_->save_identity({src_, next_seq_ + seq_block});
      reserved_seq_ = next_seq_ + seq_block;
    } catch (const std::exception& e) {
      report(nullptr, "OTSYNC_CLIENT_OFFLINE_QUEUE", e.what(), events);
    }
  }
  return next_seq_++;
}

std::error_code client_core::submit(doc_entry& doc, const ot::op& edit, outbox& out, client_events& events) {
  if (!doc.replica) return std::make_error_code(std::errc::no_such_file_or_directory);
  if (auto error = doc.replica->submit(edit)) return error;
  if (doc.presence && doc.presence->local) {
    // Our own edit: the caret follows what we type.
    doc.presence->local = ot::transform_selection(*doc.presence->local, edit, true);
  }
  persist(doc, events);
  flush(doc, out, events);
  return {};
}

void client_core::flush(doc_entry& doc, outbox& out, client_events& events) {
  flush_ops(doc, out, events);
  if (doc.presence) {
    promote_waiting(doc, out, events);
    send_local_presence(doc, out);
  }
}

void client_core::flush_ops(doc_entry& doc, outbox& out, client_events& events) {
  if (!connected_ || !doc.subscribed || !doc.replica || doc.reloading) return;
  if (doc.replica->has_inflight() || !doc.replica->has_pending()) return;
  if (doc.replica->src() != src_) doc.replica->adopt_src(src_);
  std::uint64_t seq = next_seq_;
  auto next = doc.replica->flush(seq);
  if (!next) return;
  // flush numbered it `next_seq_`; take it for real (recording the block when needed).
  take_seq(events);
  persist(doc, events);  // the op now has its seq: a restart must resend it under that seq
  send_op(doc, *next, out);
}

void client_core::fetch(doc_entry& doc, bool from_version, outbox& out) {
  if (!connected_) return;
  if (from_version) {
    if (doc.fetching || doc.reloading || !doc.replica) return;
    doc.fetching = true;
    out.push_back(doc_request("f", doc, doc.replica->version()));
  } else {
    if (doc.reloading) return;
    doc.reloading = true;
    out.push_back(doc_request("f", doc, std::nullopt));
  }
}

void client_core::persist(doc_entry& doc, client_events& events) {
  if (journal_ == nullptr || !doc.replica) return;
  try {
    journal_->save(doc.collection, doc.id, doc.replica->state());
  } catch (const std::exception& e) {
    report(&doc, "OTSYNC_CLIENT_OFFLINE_QUEUE", e.what(), events);
  }
}

void client_core::notify(doc_entry& doc, change c, client_events& events) {
  if (doc.on_change) events.changes.emplace_back(doc.on_change, std::move(c));
}

void client_core::report(const doc_entry* doc, std::string code, std::string message, client_events& events) {
  client_error e;
  if (doc != nullptr) {
    e.collection = doc->collection;
    e.id = doc->id;
  }
  e.code = std::move(code);
  e.message = std::move(message);
  events.errors.push_back(std::move(e));
}

void client_core::on_frame(std::string_view text, outbox& out, client_events& events) {
  if (!protocol::decode_server_message(text, message_)) {
    if (parse_presence_frame(text)) return on_presence_frame(text, out, events);
    report(nullptr, "OTSYNC_CLIENT_BAD_FRAME", "the server sent a frame that is not a JSON object", events);
    return;
  }
  switch (message_.a) {
    case server_action::init:
      if (!connected_) out.push_back(on_open());  // as sharedb's client: answer the legacy greeting
      return;
    case server_action::hs:
      return on_handshake(out, events);
    case server_action::s:
    case server_action::f:
    case server_action::op:
      break;
    case server_action::other:
      return on_presence_frame(text, out, events);  // presence, else ignored as sharedb ignores unknown actions
  }
  doc_entry* doc = find(message_.c, message_.d);
  if (doc == nullptr) return;
  if (message_.a == server_action::op) return on_op(*doc, out, events);
  on_doc_reply(*doc, out, events);
}

void client_core::on_handshake(outbox& out, client_events& events) {
  if (connected_) return;  // the reply to a second hs
  if (message_.has_error) {
    auto [code, text] = protocol::error_parts(message_);
    report(nullptr, std::move(code), std::move(text), events);
    return;
  }
  const std::string& id = message_.id;
  alias_ = message_.alias;
  if (id.empty()) {
    report(nullptr, "ERR_CLIENT_ID_BADLY_FORMED", "the handshake reply has no connection id", events);
    return;
  }
  if (id != src_) {
    // A new identity (first connect, or the server did not adopt ours): its seqs start afresh.
    src_ = id;
    next_seq_ = 1;
    reserved_seq_ = 0;
  }
  connected_ = true;
  for (auto& [key, doc] : docs_) start_document(*doc, out);
}

void client_core::on_doc_reply(doc_entry& doc, outbox& out, client_events& events) {
  const bool subscribe = message_.a == server_action::s;
  if (message_.has_error) {
    auto [code, text] = protocol::error_parts(message_);
    report(&doc, std::move(code), std::move(text), events);
    doc.fetching = doc.reloading = false;
    return;
  }
  if (subscribe) doc.subscribed = true;
  if (!message_.has_snapshot) {
    // The end of a versioned fetch or subscribe: the ops came before it.
    if (!subscribe) doc.fetching = false;
    flush(doc, out, events);
    return;
  }
  std::uint64_t version = message_.snapshot_v.value_or(0);
  std::optional<std::string> text;
  if (message_.snapshot_has_type) {
    const std::string& type = message_.snapshot_type;
    if (type != protocol::text_unicode_uri && type != "text-unicode") {
      report(&doc, "OTSYNC_CLIENT_UNSUPPORTED_TYPE", "the document's type is " + type, events);
      return;
    }
    text = message_.snapshot_data;
  }
  if (!subscribe && !doc.reloading) return;  // a stale reply
  adopt_snapshot(doc, version, text, out, events);
  flush(doc, out, events);
}

void client_core::adopt_snapshot(doc_entry& doc, std::uint64_t version, const std::optional<std::string>& text,
                                 outbox& out, client_events& events) {
  const bool reload = doc.reloading;
  doc.reloading = false;
  if (doc.replica && !reload) {
    // We subscribed from our version, so a snapshot means the server knows none of our history: catch up.
    if (version > doc.replica->version()) fetch(doc, true, out);
    return;
  }
  doc.loaded = true;
  if (doc.presence) {
    // A new text: remote presences at older versions cannot be placed on it; they are sent again.
    const bool had = !doc.presence->remotes.empty();
    clear_presences(doc, false, events);
    doc.presence->forget_history();
    const auto stale = std::erase_if(doc.presence->waits, [&](const auto& w) { return w.second.version < version; });
    if (had || stale > 0) ask_presence_resend(doc, out);
  }
  if (!text) {
    doc.replica.reset();
    if (doc.create_with && doc.create_seq == 0) {
      doc.create_seq = take_seq(events);
      std::string frame;
      protocol::encode_create(frame, options_.style, doc.collection, doc.id, version, doc.create_seq, src_,
                              *doc.create_with);
      out.push_back(std::move(frame));
    }
    notify(doc, {change_kind::reloaded, {}, {}, version}, events);
    return;
  }
  doc.replica = std::make_unique<ot_client>(src_, version, *text);
  if (doc.presence && doc.presence->local) {
    // Ours was on the text before the reload: kept within the new one and sent again at its version.
    const std::uint64_t size = doc.replica->text().size();
    auto& local = *doc.presence->local;
    local = {std::min(local.anchor, size), std::min(local.focus, size)};
    doc.presence->local_unsent = true;
  }
  persist(doc, events);
  notify(doc, {change_kind::reloaded, {}, {}, version}, events);
}

void client_core::on_op_error(doc_entry& doc, outbox& out, client_events& events) {
  auto [code, text] = protocol::error_parts(message_);
  auto seq = message_.seq;
  if (doc.create_seq != 0 && seq == doc.create_seq) {
    doc.create_seq = 0;
    // Someone else created it first: their create reaches us as an op, or the reload brings it.
    if (code != "ERR_DOC_ALREADY_CREATED") report(&doc, code, text, events);
    if (!doc.replica) fetch(doc, false, out);
    return;
  }
  report(&doc, code, text, events);
  // As sharedb's client: a rejected op is rolled back by reloading the snapshot (local edits after it go too).
  if (doc.replica && doc.replica->has_inflight()) fetch(doc, false, out);
}

void client_core::on_op(doc_entry& doc, outbox& out, client_events& events) {
  if (message_.has_error) return on_op_error(doc, out, events);
  auto version = message_.v;
  if (!version) return;
  const std::string& src = message_.src;
  std::uint64_t seq = message_.seq.value_or(0);
  if (!message_.has_op && !message_.has_create && !message_.has_del) {  // an ack
    if (src != src_ && (!doc.replica || src != doc.replica->src())) return;
    if (doc.create_seq != 0 && seq == doc.create_seq) {
      doc.create_seq = 0;
      doc.replica = std::make_unique<ot_client>(src_, *version + 1, doc.create_with.value_or(""));
      doc.loaded = true;
      if (doc.presence) {
        clear_presences(doc, false, events);
        doc.presence->forget_history();
      }
      persist(doc, events);
      notify(doc, {change_kind::created, {}, src_, *version + 1}, events);
      return flush(doc, out, events);
    }
    if (!doc.replica || seq != doc.replica->inflight_seq()) return;
    std::optional<ot::op> committed;
    if (doc.presence && *version == doc.replica->version()) committed = presence_shape(*doc.replica->inflight());
    if (doc.replica->acknowledge(*version)) {
      // The ack is ahead of us: ops are missing; the op is acked when it shows up in the stream.
      return fetch(doc, true, out);
    }
    ++doc.acks;
    if (options_.observer != nullptr) options_.observer->acknowledged(doc, seq);
    if (committed) presence_committed(doc, *version, std::move(*committed), {}, out, events);
    persist(doc, events);
    return flush(doc, out, events);
  }
  if (doc.reloading) return;  // the snapshot on its way supersedes it
  if (message_.has_create) {
    if (doc.replica) return fetch(doc, false, out);  // we missed a delete: start again
    doc.replica = std::make_unique<ot_client>(src_, *version + 1, message_.create_data);
    doc.loaded = true;
    if (doc.presence) {
      clear_presences(doc, false, events);
      doc.presence->forget_history();
    }
    persist(doc, events);
    notify(doc, {change_kind::created, {}, src, *version + 1}, events);
    return flush(doc, out, events);
  }
  if (!doc.replica) return fetch(doc, false, out);
  oplog::op_record record;
  record.src = src;
  record.seq = seq;
  record.version = *version;
  if (message_.has_del) {
    if (*version != doc.replica->version()) {
      if (*version > doc.replica->version()) fetch(doc, true, out);
      return;
    }
    if (!doc.replica->synchronised())
      report(&doc, "OTSYNC_CLIENT_EDITS_DROPPED", "the document was deleted with local edits not yet sent", events);
    doc.replica.reset();
    if (doc.presence) {
      clear_presences(doc, true, events);
      doc.presence->forget_history();
    }
    notify(doc, {change_kind::deleted, {}, src, *version + 1}, events);
    return;
  }
  auto op = read_op(message_);
  if (!op) {
    report(&doc, "OTSYNC_CLIENT_BAD_OP", "the server sent an op that does not check: " + op.error().message(), events);
    return fetch(doc, false, out);
  }
  record.body = std::move(*op);
  ot::op applied;
  // With presence, our op in flight as it was committed, when this is its echo (as `receive` recognises it).
  std::optional<ot::op> inflight;
  if (doc.presence && doc.replica->has_inflight() && src == doc.replica->src() && seq == doc.replica->inflight_seq() &&
      *version == doc.replica->version())
    inflight = presence_shape(*doc.replica->inflight());
  auto result = doc.replica->receive(record, doc.on_change || doc.presence ? &applied : nullptr);
  if (!result) {
    report(&doc, "OTSYNC_CLIENT_BAD_OP", "a remote op did not apply: " + result.error().message(), events);
    return fetch(doc, false, out);
  }
  switch (*result) {
    case receive_result::applied:
      if (options_.observer != nullptr) options_.observer->remote_applied(doc, src, seq);
      if (doc.presence) {
        if (doc.presence->local) doc.presence->local = ot::transform_selection(*doc.presence->local, applied, false);
        presence_committed(doc, *version, presence_shape(std::get<ot::op>(record.body)), src, out, events);
      }
      notify(doc, {change_kind::edit, std::move(applied), src, doc.replica->version()}, events);
      break;
    case receive_result::acknowledged:
      ++doc.acks;
      if (options_.observer != nullptr) options_.observer->acknowledged(doc, seq);
      if (doc.presence && inflight) presence_committed(doc, *version, std::move(*inflight), {}, out, events);
      persist(doc, events);
      flush(doc, out, events);
      break;
    case receive_result::duplicate:
      break;
    case receive_result::gap:
      fetch(doc, true, out);
      break;
  }
}

}  // namespace otsync::client
