#include "client_core.hpp"

#include <nlohmann/json.hpp>

#include "otsync/protocol/json_parse.hpp"
#include "otsync/protocol/op_json.hpp"

namespace otsync::client {
namespace {

using nlohmann::json;

constexpr std::string_view text_unicode_uri = "http://sharejs.org/types/text-unicode";
/// Sequence numbers are recorded as used in blocks, so the journal is not
/// written for every op; a restart skips the rest of the block.
constexpr std::uint64_t seq_block = 1000;

std::string field_string(const json& message, const char* key) {
  auto it = message.find(key);
  return it != message.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<std::uint64_t> field_uint(const json& message, const char* key) {
  auto it = message.find(key);
  if (it == message.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<std::uint64_t>();
}

/// ShareDB's error object as (code, message); anything else is its own message.
std::pair<std::string, std::string> error_parts(const json& error) {
  if (!error.is_object()) return {"", error.dump()};
  std::string text = field_string(error, "message");
  return {field_string(error, "code"), text.empty() ? error.dump() : text};
}

std::string doc_request(std::string_view action, const doc_entry& doc, std::optional<std::uint64_t> version) {
  json m = {{"a", action}, {"c", doc.collection}, {"d", doc.id}};
  m["v"] = version ? json(*version) : json(nullptr);
  return m.dump();
}

std::string op_frame(const doc_entry& doc, const outgoing_op& op) {
  // `src` always goes explicitly: a replica resumed from disk may carry an older connection id.
  json m = {{"a", "op"},
            {"c", doc.collection},
            {"d", doc.id},
            {"v", op.version},
            {"src", op.src},
            {"seq", op.seq},
            {"op", protocol::op_to_json(op.op)}};
  return m.dump();
}

}  // namespace

client_core::client_core(replica_journal* journal, client_events& startup_errors) : journal_(journal) {
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
  json hs = {{"a", "hs"}, {"protocol", 1}, {"protocolMinor", 2}};
  hs["id"] = src_.empty() ? json(nullptr) : json(src_);
  return hs.dump();
}

void client_core::on_disconnected() {
  connected_ = false;
  for (auto& [key, doc] : docs_) {
    doc->subscribed = doc->fetching = doc->reloading = false;
    // A create whose ack was lost: the resubscribe shows whether it was committed, else it is sent again.
    doc->create_seq = 0;
    if (doc->replica) doc->replica->disconnected();
  }
}

doc_entry* client_core::find(std::string_view collection, std::string_view id) {
  auto it = docs_.find(std::make_pair(std::string(collection), std::string(id)));
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
      if (auto resend = doc.replica->flush(unused)) {
        out.push_back(op_frame(doc, *resend));
      }
    }
  }
  out.push_back(doc_request("s", doc, doc.replica ? std::optional(doc.replica->version()) : std::nullopt));
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
  persist(doc, events);
  flush(doc, out, events);
  return {};
}

void client_core::flush(doc_entry& doc, outbox& out, client_events& events) {
  if (!connected_ || !doc.subscribed || !doc.replica || doc.reloading) return;
  if (doc.replica->has_inflight() || !doc.replica->has_pending()) return;
  if (doc.replica->src() != src_) doc.replica->adopt_src(src_);
  std::uint64_t seq = next_seq_;
  auto next = doc.replica->flush(seq);
  if (!next) return;
  // flush numbered it `next_seq_`; take it for real (recording the block when needed).
  take_seq(events);
  persist(doc, events);  // the op now has its seq: a restart must resend it under that seq
  out.push_back(op_frame(doc, *next));
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
  json message = protocol::parse_json_bounded(text);
  if (!message.is_object()) {
    report(nullptr, "OTSYNC_CLIENT_BAD_FRAME", "the server sent a frame that is not a JSON object", events);
    return;
  }
  std::string action = field_string(message, "a");
  if (action == "init") {
    if (!connected_) out.push_back(on_open());  // as sharedb's client: answer the legacy greeting
    return;
  }
  if (action == "hs") return on_handshake(message, out, events);
  if (action != "s" && action != "f" && action != "op") return;  // unknown actions are ignored, as in sharedb
  doc_entry* doc = find(field_string(message, "c"), field_string(message, "d"));
  if (doc == nullptr) return;
  if (action == "op") return on_op(*doc, message, out, events);
  on_doc_reply(*doc, message, out, events);
}

void client_core::on_handshake(const json& message, outbox& out, client_events& events) {
  if (connected_) return;  // the reply to a second hs
  if (auto error = message.find("error"); error != message.end()) {
    auto [code, text] = error_parts(*error);
    report(nullptr, std::move(code), std::move(text), events);
    return;
  }
  std::string id = field_string(message, "id");
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

void client_core::on_doc_reply(doc_entry& doc, const json& message, outbox& out, client_events& events) {
  const bool subscribe = field_string(message, "a") == "s";
  if (auto error = message.find("error"); error != message.end()) {
    auto [code, text] = error_parts(*error);
    report(&doc, std::move(code), std::move(text), events);
    doc.fetching = doc.reloading = false;
    return;
  }
  if (subscribe) doc.subscribed = true;
  auto data = message.find("data");
  if (data == message.end() || !data->is_object()) {
    // The end of a versioned fetch or subscribe: the ops came before it.
    if (!subscribe) doc.fetching = false;
    flush(doc, out, events);
    return;
  }
  std::uint64_t version = field_uint(*data, "v").value_or(0);
  std::optional<std::string> text;
  if (auto type = data->find("type"); type != data->end() && type->is_string()) {
    if (type->get<std::string>() != text_unicode_uri && type->get<std::string>() != "text-unicode") {
      report(&doc, "OTSYNC_CLIENT_UNSUPPORTED_TYPE", "the document's type is " + type->get<std::string>(), events);
      return;
    }
    text = field_string(*data, "data");
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
  if (!text) {
    doc.replica.reset();
    if (doc.create_with && doc.create_seq == 0) {
      doc.create_seq = take_seq(events);
      json m = {{"a", "op"},
                {"c", doc.collection},
                {"d", doc.id},
                {"v", version},
                {"src", src_},
                {"seq", doc.create_seq},
                {"create", {{"type", text_unicode_uri}, {"data", *doc.create_with}}}};
      out.push_back(m.dump());
    }
    notify(doc, {change_kind::reloaded, {}, {}, version}, events);
    return;
  }
  doc.replica = std::make_unique<ot_client>(src_, version, *text);
  persist(doc, events);
  notify(doc, {change_kind::reloaded, {}, {}, version}, events);
}

void client_core::on_op_error(doc_entry& doc, const json& message, outbox& out, client_events& events) {
  auto [code, text] = error_parts(message.at("error"));
  auto seq = field_uint(message, "seq");
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

void client_core::on_op(doc_entry& doc, const json& message, outbox& out, client_events& events) {
  if (message.contains("error")) return on_op_error(doc, message, out, events);
  auto version = field_uint(message, "v");
  if (!version) return;
  std::string src = field_string(message, "src");
  std::uint64_t seq = field_uint(message, "seq").value_or(0);
  const bool has_op = message.contains("op");
  const bool has_create = message.contains("create");
  const bool has_del = message.contains("del");
  if (!has_op && !has_create && !has_del) {  // an ack
    if (src != src_ && (!doc.replica || src != doc.replica->src())) return;
    if (doc.create_seq != 0 && seq == doc.create_seq) {
      doc.create_seq = 0;
      doc.replica = std::make_unique<ot_client>(src_, *version + 1, doc.create_with.value_or(""));
      doc.loaded = true;
      persist(doc, events);
      notify(doc, {change_kind::created, {}, src_, *version + 1}, events);
      return flush(doc, out, events);
    }
    if (!doc.replica || seq != doc.replica->inflight_seq()) return;
    if (doc.replica->acknowledge(*version)) {
      // The ack is ahead of us: ops are missing; the op is acked when it shows up in the stream.
      return fetch(doc, true, out);
    }
    ++doc.acks;
    persist(doc, events);
    return flush(doc, out, events);
  }
  if (doc.reloading) return;  // the snapshot on its way supersedes it
  if (has_create) {
    if (doc.replica) return fetch(doc, false, out);  // we missed a delete: start again
    const json& create = message["create"];
    doc.replica =
        std::make_unique<ot_client>(src_, *version + 1, create.is_object() ? field_string(create, "data") : "");
    doc.loaded = true;
    persist(doc, events);
    notify(doc, {change_kind::created, {}, src, *version + 1}, events);
    return flush(doc, out, events);
  }
  if (!doc.replica) return fetch(doc, false, out);
  oplog::op_record record;
  record.src = src;
  record.seq = seq;
  record.version = *version;
  if (has_del) {
    if (*version != doc.replica->version()) {
      if (*version > doc.replica->version()) fetch(doc, true, out);
      return;
    }
    if (!doc.replica->synchronised())
      report(&doc, "OTSYNC_CLIENT_EDITS_DROPPED", "the document was deleted with local edits not yet sent", events);
    doc.replica.reset();
    notify(doc, {change_kind::deleted, {}, src, *version + 1}, events);
    return;
  }
  auto op = protocol::op_from_json(message["op"]);
  if (!op) {
    report(&doc, "OTSYNC_CLIENT_BAD_OP", "the server sent an op that does not check: " + op.error().message(), events);
    return fetch(doc, false, out);
  }
  record.body = std::move(*op);
  ot::op applied;
  auto result = doc.replica->receive(record, &applied);
  if (!result) {
    report(&doc, "OTSYNC_CLIENT_BAD_OP", "a remote op did not apply: " + result.error().message(), events);
    return fetch(doc, false, out);
  }
  switch (*result) {
    case receive_result::applied:
      notify(doc, {change_kind::edit, std::move(applied), src, doc.replica->version()}, events);
      break;
    case receive_result::acknowledged:
      ++doc.acks;
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
