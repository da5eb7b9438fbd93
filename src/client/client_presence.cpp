// Presence in the client core: our cursor/selection sent on the document's
// presence channel, other clients' presences moved onto the local text.
//
// Coordinates: a remote presence is kept at the replica's version (the
// server's text at `version()`), moved through every committed op as it
// arrives (the author's own op with the owner's rule, `transform_selection(...,
// is_own_op)`), and shown through the op in flight and the pending edits
// (not the owner's). Ours is kept on the local text and sent only when no
// edit of ours is unacknowledged, so the server reads it at our version.
#include <algorithm>
#include <random>

#include <nlohmann/json.hpp>

#include "client_core.hpp"
#include "otsync/protocol/json_parse.hpp"
#include "otsync/protocol/message.hpp"

namespace otsync::client {
namespace {

using nlohmann::json;

/// A non-negative integer that a JavaScript number holds exactly.
std::optional<std::uint64_t> count_of(const json& value) {
  constexpr double max_safe = 9007199254740991.0;
  if (value.is_number_unsigned()) {
    auto n = value.get<std::uint64_t>();
    if (static_cast<double>(n) > max_safe) return std::nullopt;
    return n;
  }
  if (value.is_number_integer()) {
    auto n = value.get<std::int64_t>();
    if (n < 0) return std::nullopt;
    return static_cast<std::uint64_t>(n);
  }
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (!(d >= 0) || d > max_safe || std::floor(d) != d) return std::nullopt;
    return static_cast<std::uint64_t>(d);
  }
  return std::nullopt;
}

/// Reads an optional count member: absent or null is fine, anything else must be a count.
bool read_count(const json& object, const char* name, std::optional<std::uint64_t>& out) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return true;
  out = count_of(*it);
  return out.has_value();
}

std::string random_presence_id() {
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::random_device device;
  std::mt19937_64 rng((static_cast<std::uint64_t>(device()) << 32) ^ device());
  std::uniform_int_distribution<std::size_t> pick(0, sizeof(digits) - 2);
  std::string id(20, '0');
  for (auto& c : id) c = digits[pick(rng)];
  return id;
}

std::string channel_of(const doc_entry& doc) {
  return doc.collection + "." + doc.id;
}

/// Kept ops hold this many components at most, whatever `presence_history` says.
constexpr std::size_t max_history_components = 1 << 16;

ot::selection clamp(ot::selection range, std::uint64_t size) {
  return {std::min(range.anchor, size), std::min(range.focus, size)};
}

}  // namespace

ot::op presence_shape(const ot::op& operation) {
  std::vector<ot::component> parts;
  parts.reserve(operation.size());
  for (const auto& c : operation) {
    switch (c.kind()) {
      case ot::component_kind::skip:
        parts.push_back(ot::component::skip(c.length()));
        break;
      case ot::component_kind::insert:
        parts.push_back(ot::component::insert(std::string(), c.length()));
        break;
      case ot::component_kind::erase:
        parts.push_back(ot::component::erase(c.length()));
        break;
    }
  }
  return ot::op(std::move(parts));
}

std::optional<presence_frame> parse_presence_frame(std::string_view text) {
  json message = protocol::parse_json_bounded(text);
  if (message.is_discarded() || !message.is_object()) return std::nullopt;
  auto a = message.find("a");
  if (a == message.end() || !a->is_string()) return std::nullopt;
  const auto& action = a->get_ref<const std::string&>();
  presence_frame frame;
  if (action == "p") {
    frame.action = presence_frame::kind::update;
  } else if (action == "ps") {
    frame.action = presence_frame::kind::subscribed;
  } else if (action == "pu") {
    frame.action = presence_frame::kind::unsubscribed;
  } else if (action == "pr") {
    frame.action = presence_frame::kind::resend;
  } else {
    return std::nullopt;
  }
  if (auto ch = message.find("ch"); ch != message.end() && ch->is_string()) {
    frame.channel = ch->get<std::string>();
  } else if (frame.action != presence_frame::kind::resend) {
    return std::nullopt;  // only the reply to our own `pr` comes without a channel
  }
  if (auto error = message.find("error"); error != message.end() && !error->is_null()) {
    frame.has_error = true;
    if (error->is_object()) {
      auto code = error->find("code");
      auto text_member = error->find("message");
      if (code != error->end() && code->is_string()) frame.error_code = code->get<std::string>();
      if (text_member != error->end() && text_member->is_string())
        frame.error_message = text_member->get<std::string>();
    }
    if (frame.error_message.empty()) frame.error_message = error->dump(-1, ' ', false, json::error_handler_t::replace);
  }
  if (frame.action != presence_frame::kind::update) return frame;
  auto id = message.find("id");
  if (id == message.end() || !id->is_string()) return std::nullopt;
  frame.id = id->get<std::string>();
  if (auto src = message.find("src"); src != message.end() && src->is_string()) frame.src = src->get<std::string>();
  std::optional<std::uint64_t> pv;
  if (!read_count(message, "pv", pv) || !read_count(message, "v", frame.version)) return std::nullopt;
  frame.pv = pv.value_or(0);
  if (auto p = message.find("p"); p != message.end() && !p->is_null()) {
    frame.present = true;
    frame.value_bytes = p->dump(-1, ' ', false, json::error_handler_t::replace).size();
    frame.range = protocol::presence_selection(*p);
    if (frame.range) {
      json rest = *p;
      rest.erase("index");
      rest.erase("length");
      frame.data = rest.dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
      frame.data = p->dump(-1, ' ', false, json::error_handler_t::replace);
    }
  }
  return frame;
}

doc_presence& client_core::enable_presence(doc_entry& doc, outbox& out) {
  if (doc.presence) return *doc.presence;
  doc.presence = std::make_unique<doc_presence>();
  doc.presence->local_id = random_presence_id();
  if (connected_) send_presence_subscribe(doc, out);
  return *doc.presence;
}

void client_core::send_presence_subscribe(doc_entry& doc, outbox& out) {
  json frame = {{"a", "ps"}, {"ch", channel_of(doc)}, {"seq", presence_seq_++}};
  out.push_back(frame.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::error_code client_core::set_selection(doc_entry& doc, std::optional<ot::selection> range, std::string_view data,
                                           outbox& out, client_events& events) {
  if (range && !doc.replica) return std::make_error_code(std::errc::no_such_file_or_directory);
  if (range && (range->anchor > doc.replica->text().size() || range->focus > doc.replica->text().size()))
    return std::make_error_code(std::errc::result_out_of_range);
  std::string members;
  if (range && !data.empty()) {
    json object = protocol::parse_json_bounded(data);
    if (object.is_discarded() || !object.is_object()) return std::make_error_code(std::errc::invalid_argument);
    object.erase("index");
    object.erase("length");
    members = object.dump(-1, ' ', false, json::error_handler_t::replace);
    protocol::set_presence_selection(object, *range);
    if (object.dump(-1, ' ', false, json::error_handler_t::replace).size() > options_.max_presence_bytes)
      return std::make_error_code(std::errc::message_size);
  }
  auto& presence = enable_presence(doc, out);
  presence.local = range;
  presence.local_data = std::move(members);
  presence.local_unsent = true;
  send_local_presence(doc, out);
  (void)events;
  return {};
}

void client_core::send_local_presence(doc_entry& doc, outbox& out) {
  if (!doc.presence || !connected_) return;
  auto& presence = *doc.presence;
  if (!presence.local_unsent) return;
  if (!presence.local) {
    // A removal goes at any time (the server relays it at the head); nothing to remove if nothing went out.
    if (presence.local_shown) {
      json frame = {{"a", "p"},
                    {"ch", channel_of(doc)},
                    {"id", presence.local_id},
                    {"p", nullptr},
                    {"pv", presence.pv++},
                    {"c", doc.collection},
                    {"d", doc.id},
                    {"v", doc.replica ? doc.replica->version() : 0},
                    {"t", protocol::text_unicode_uri}};
      out.push_back(frame.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    presence.local_unsent = presence.local_shown = false;
    return;
  }
  // The server reads the range at our version: only when the local text is the server's text there.
  if (!doc.subscribed || !doc.replica || !doc.replica->synchronised() || doc.fetching || doc.reloading ||
      doc.create_seq != 0)
    return;
  json value = presence.local_data.empty() ? json::object() : protocol::parse_json_bounded(presence.local_data);
  protocol::set_presence_selection(value, *presence.local);
  json frame = {{"a", "p"},
                {"ch", channel_of(doc)},
                {"id", presence.local_id},
                {"p", std::move(value)},
                {"pv", presence.pv++},
                {"c", doc.collection},
                {"d", doc.id},
                {"v", doc.replica->version()},
                {"t", protocol::text_unicode_uri}};
  out.push_back(frame.dump(-1, ' ', false, json::error_handler_t::replace));
  presence.local_unsent = false;
  presence.local_shown = true;
}

void client_core::ask_presence_resend(doc_entry& doc, outbox& out) {
  auto& presence = *doc.presence;
  const std::uint64_t at = doc.replica ? doc.replica->version() : 0;
  if (!connected_ || presence.asked_resend_at == at) return;  // once per version: the server limits them too
  presence.asked_resend_at = at;
  out.push_back(json{{"a", "pr"}, {"ch", channel_of(doc)}}.dump(-1, ' ', false, json::error_handler_t::replace));
}

void client_core::on_presence_frame(std::string_view text, outbox& out, client_events& events) {
  auto frame = parse_presence_frame(text);
  if (!frame || frame->channel.empty()) return;  // not presence (ignored, as sharedb ignores unknown actions)
  doc_entry* doc = nullptr;
  for (auto& [key, entry] : docs_) {
    if (entry->presence && entry->collection.size() + 1 + entry->id.size() == frame->channel.size() &&
        channel_of(*entry) == frame->channel) {
      doc = entry.get();
      break;
    }
  }
  if (doc == nullptr) return;
  auto& presence = *doc->presence;
  switch (frame->action) {
    case presence_frame::kind::subscribed:
      if (frame->has_error) {
        report(doc, frame->error_code, frame->error_message, events);
        return;
      }
      presence.subscribed = true;
      if (presence.local) presence.local_unsent = true;  // after a reconnect our cursor comes back
      return send_local_presence(*doc, out);
    case presence_frame::kind::unsubscribed:
      return;
    case presence_frame::kind::resend:
      if (presence.local && presence.local_shown) presence.local_unsent = true;
      return send_local_presence(*doc, out);
    case presence_frame::kind::update:
      return on_presence_update(*doc, *frame, out, events);
  }
}

void client_core::on_presence_update(doc_entry& doc, presence_frame& frame, outbox& out, client_events& events) {
  auto& presence = *doc.presence;
  if (frame.id == presence.local_id) {
    // The echo of ours (its ack), or the error that refused it.
    if (frame.has_error) report(&doc, frame.error_code, frame.error_message, events);
    return;
  }
  if (frame.has_error) return;
  auto shown = presence.remotes.find(frame.id);
  auto waiting = presence.waits.find(frame.id);
  std::uint64_t latest = 0;
  bool known = false;
  if (shown != presence.remotes.end()) {
    latest = shown->second.pv;
    known = true;
  }
  if (waiting != presence.waits.end()) {
    latest = std::max(latest, waiting->second.pv);
    known = true;
  }
  if (known && frame.pv < latest) return;  // older than one we have
  if (!frame.present) {
    if (waiting != presence.waits.end()) presence.waits.erase(waiting);
    if (shown != presence.remotes.end()) {
      remote_presence gone{frame.id, shown->second.src, std::nullopt, {}};
      presence.remotes.erase(shown);
      notify_presence(doc, presence_kind::left, std::move(gone), events);
    }
    return;
  }
  if (frame.value_bytes > options_.max_presence_bytes) {
    ++presence.dropped;
    return;
  }
  if (!known && presence.remotes.size() + presence.waits.size() >= options_.max_remote_presences) {
    ++presence.dropped;
    return;
  }
  if (!frame.range) {
    // Not a range: nothing to move, shown as it is.
    if (waiting != presence.waits.end()) presence.waits.erase(waiting);
    place_remote(doc, frame.id, frame.src, frame.pv, doc.replica ? doc.replica->version() : 0, std::nullopt,
                 std::move(frame.data), out, events);
    return;
  }
  const std::uint64_t ours = doc.replica ? doc.replica->version() : 0;
  const std::uint64_t version = frame.version.value_or(ours);
  if (!doc.replica || version > ours || doc.fetching || doc.reloading) {
    // Sent at a version we have not reached: shown once we have (the latest of each presence).
    presence.waits[frame.id] = {frame.src, frame.pv, version, *frame.range, std::move(frame.data)};
    return;
  }
  if (waiting != presence.waits.end()) presence.waits.erase(waiting);
  place_remote(doc, frame.id, frame.src, frame.pv, version, frame.range, std::move(frame.data), out, events);
}

bool client_core::place_remote(doc_entry& doc, const std::string& id, const std::string& src, std::uint64_t pv,
                               std::uint64_t version, std::optional<ot::selection> range, std::string data, outbox& out,
                               client_events& events) {
  auto& presence = *doc.presence;
  if (range && doc.replica && version < doc.replica->version()) {
    // Sent before ops we have applied: moved through them (kept for a while for this).
    auto& history = presence.history;
    if (history.empty() || history.front().version > version) {
      ++presence.dropped;
      ask_presence_resend(doc, out);
      return false;
    }
    for (const auto& past : history) {
      if (past.version < version) continue;
      range = ot::transform_selection(*range, past.op, !past.src.empty() && past.src == src);
    }
  }
  auto it = presence.remotes.find(id);
  if (it == presence.remotes.end()) {
    it = presence.remotes.emplace(id, doc_presence::remote{src, pv, range, std::move(data)}).first;
    notify_presence(doc, presence_kind::joined, presence_view(doc, id, it->second), events);
    return true;
  }
  auto before = presence_view(doc, id, it->second);
  it->second = {src, pv, range, std::move(data)};
  auto now = presence_view(doc, id, it->second);
  // The same again (a re-send for a newcomer, after a `pr`): nothing to report.
  if (now.selection != before.selection || now.src != before.src || now.data != before.data)
    notify_presence(doc, presence_kind::updated, std::move(now), events);
  return true;
}

void client_core::presence_committed(doc_entry& doc, std::uint64_t version, ot::op shape, const std::string& src,
                                     outbox& out, client_events& events) {
  auto& presence = *doc.presence;
  for (auto& [id, r] : presence.remotes) {
    if (r.range) r.range = ot::transform_selection(*r.range, shape, !src.empty() && src == r.src);
  }
  if (options_.presence_history > 0) {
    presence.history_components += shape.size();
    presence.history.push_back({version, std::move(shape), src});
    while (presence.history.size() > options_.presence_history ||
           (presence.history.size() > 1 && presence.history_components > max_history_components)) {
      presence.history_components -= presence.history.front().op.size();
      presence.history.pop_front();
    }
  }
  promote_waiting(doc, out, events);
}

void client_core::promote_waiting(doc_entry& doc, outbox& out, client_events& events) {
  auto& presence = *doc.presence;
  if (!doc.replica || doc.fetching || doc.reloading) return;
  const std::uint64_t ours = doc.replica->version();
  for (auto it = presence.waits.begin(); it != presence.waits.end();) {
    if (it->second.version > ours) {
      ++it;
      continue;
    }
    auto entry = std::move(it->second);
    std::string id = it->first;
    it = presence.waits.erase(it);
    place_remote(doc, id, entry.src, entry.pv, entry.version, entry.range, std::move(entry.data), out, events);
  }
}

void client_core::clear_presences(doc_entry& doc, bool clear_local, client_events& events) {
  auto& presence = *doc.presence;
  auto gone = std::move(presence.remotes);
  presence.remotes.clear();
  if (clear_local) {
    presence.waits.clear();
    presence.local.reset();
    presence.local_unsent = false;
  }
  for (auto& [id, r] : gone) notify_presence(doc, presence_kind::left, {id, r.src, std::nullopt, {}}, events);
}

remote_presence client_core::presence_view(const doc_entry& doc, const std::string& id,
                                           const doc_presence::remote& r) const {
  remote_presence view{id, r.src, r.range, r.data};
  if (!view.selection || !doc.replica) return view;
  // Through our edits the server has not acknowledged yet: not the owner's ops.
  if (const auto& inflight = doc.replica->inflight())
    view.selection = ot::transform_selection(*view.selection, *inflight, false);
  if (const auto& pending = doc.replica->pending())
    view.selection = ot::transform_selection(*view.selection, *pending, false);
  view.selection = clamp(*view.selection, doc.replica->text().size());
  return view;
}

std::vector<remote_presence> client_core::remote_presences(const doc_entry& doc) const {
  std::vector<remote_presence> all;
  if (!doc.presence) return all;
  all.reserve(doc.presence->remotes.size());
  for (const auto& [id, r] : doc.presence->remotes) all.push_back(presence_view(doc, id, r));
  return all;
}

void client_core::notify_presence(doc_entry& doc, presence_kind kind, remote_presence p, client_events& events) {
  if (doc.presence->on_presence)
    events.presences.emplace_back(doc.presence->on_presence, presence_change{kind, std::move(p)});
}

}  // namespace otsync::client
