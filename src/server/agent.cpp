#include "otsync/server/agent.hpp"

#include <algorithm>
#include <vector>

#include "otsync/oplog/snapshot.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/errors.hpp"
#include "otsync/protocol/json_text.hpp"
#include "otsync/server/log.hpp"
#include "otsync/server/presence_hub.hpp"

namespace otsync::server {
using nlohmann::json;

// A connection's interest in one document. Frames that arrive before the
// subscribe reply went out are held back, so the client sees ops in version
// order: the reply's ops first, then the broadcasts.
class agent::subscription : public doc::subscriber,
                            public broadcast_receiver,
                            public std::enable_shared_from_this<subscription> {
 public:
  subscription(agent& owner, std::weak_ptr<connection_io> io) : owner_(&owner), io_(std::move(io)) {}

  // On the document's executor.
  void on_op(const doc::shared_broadcast& op) override {
    if (auto io = io_.lock()) io->post_broadcast(shared_from_this(), op);
  }

  // On the connection's executor.
  void receive(const doc::shared_broadcast& op) override {
    if (!active_) return;
    client_version = std::max(client_version, op->version + 1);
    if (op->src == owner_->src_) return;  // the author gets the ack instead
    if (!ready_) {
      held_.push_back(op->frame);
      return;
    }
    if (auto io = io_.lock()) io->send_broadcast(op->frame);
    if (!owner_->awaiting_.empty()) owner_->release_awaiting(&key, std::chrono::steady_clock::time_point::min());
  }

  // The subscribe reply was sent: release what was held back.
  void mark_ready() {
    ready_ = true;
    if (!active_) {  // unsubscribed, taken over or failed meanwhile: what was held is not sent
      held_.clear();
      return;
    }
    if (auto io = io_.lock()) {
      for (auto& frame : held_) io->send_broadcast(std::move(frame));
    }
    held_.clear();
    if (!owner_->awaiting_.empty()) owner_->release_awaiting(&key, std::chrono::steady_clock::time_point::min());
  }
  void deactivate() { active_ = false; }
  [[nodiscard]] bool active() const noexcept { return active_; }

  doc::subscription_handle handle;  // empty until subscribed
  store::doc_key key;
  /// The version the client has (or will have, with an ack on its way) from the ops given it here.
  std::uint64_t client_version = 0;

 private:
  agent* owner_;
  std::weak_ptr<connection_io> io_;
  bool active_ = true;
  bool ready_ = false;
  std::vector<doc::shared_frame> held_;
};

agent::agent(doc::document_service& documents, std::weak_ptr<connection_io> io, std::string connection_id,
             agent_options options, agent_observer* observer)
    : documents_(documents),
      io_(std::move(io)),
      options_(options),
      observer_(observer),
      requests_(options.request_rate, options.request_burst),
      creates_(options.create_rate, options.create_burst),
      presence_broadcasts_(options.presence_rate, 2 * options.presence_rate),
      // A subscriber opening many documents at once gets every member's presence at once; a
      // client looping `pr` or `ps`/`pu` cannot make everyone else resend faster than this.
      presence_resends_(options.presence_rate / 4, std::max(50.0, options.presence_rate)) {
  set_src(std::move(connection_id));
}

void connection_io::show_presence(std::shared_ptr<const shown_presence> shown) {
  send_broadcast(shown->frame);
}

void agent::set_src(std::string src) {
  src_ = std::move(src);
  src_alias_ = options_.identity ? options_.identity->alias(src_) : std::string();
}

namespace {
// The version a successful read reply brings the client to: the snapshot's,
// or the one it asked from plus the ops sent.
std::uint64_t version_given(const doc::read_result& result, std::optional<std::uint64_t> asked) {
  if (result.snap) return result.snap->version;
  return asked.value_or(0) + result.ops.size();
}

// Where the src string of an op frame (protocol::encode_op_message) starts and
// its length. Its members are in key order and `v` (a number) is last, so the
// last `"src":"` is the member itself: never inside a string, where every
// quote is escaped.
std::pair<std::size_t, std::size_t> frame_src(std::string_view frame) {
  constexpr std::string_view key = "\"src\":\"";
  auto at = frame.rfind(key);
  if (at == std::string_view::npos) return {0, 0};
  auto start = at + key.size();
  auto end = frame.find('"', start);
  if (end == std::string_view::npos) return {0, 0};
  return {start, end - start};
}
}  // namespace

void agent::send_ops(std::vector<doc::shared_frame>& frames) {
  auto io = io_.lock();
  if (!io) return;
  for (auto& frame : frames) {
    if (!src_alias_.empty()) {
      auto [start, length] = frame_src(*frame);
      if (length == src_alias_.size() && std::string_view(*frame).substr(start, length) == src_alias_) {
        std::string own;
        own.reserve(frame->size() + src_.size());
        own.append(*frame, 0, start - 1);
        protocol::json_text::append_string(own, src_);
        own.append(*frame, start + length + 1);
        frame = std::make_shared<const std::string>(std::move(own));
      }
    }
    io->send(std::move(frame));
  }
}

bool token_bucket::try_take(std::chrono::steady_clock::time_point now) noexcept {
  if (rate_ <= 0) return true;
  if (last_ != std::chrono::steady_clock::time_point{}) {
    tokens_ = std::min(burst_, tokens_ + rate_ * std::chrono::duration<double>(now - last_).count());
  }
  last_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

bool agent::may_subscribe(std::size_t wanted) const noexcept {
  return subscriptions_.size() + wanted <= options_.max_subscriptions;
}

agent::~agent() {
  on_closed();
}

template <class Fn>
auto agent::on_strand(Fn fn) {
  begin_request();
  // A request in flight keeps its connection alive: with reading paused for
  // back-pressure, nothing else may hold it until the replies come back.
  return [conn = io_.lock(), this, fn = std::move(fn)](auto result) mutable {
    if (!conn) return;
    conn->post([this, fn = std::move(fn), result = std::move(result)]() mutable {
      // The reply first: ending the last request of an expired connection closes it.
      if (!closed_) fn(std::move(result));
      end_request();
    });
  };
}

void agent::expire() {
  if (expired_ || closed_) return;
  expired_ = true;
  // Nothing more for it: no broadcasts, and bulk reads not yet issued are not (read_next).
  for (auto& [key, live] : subscriptions_) release_all(live);
  subscriptions_.clear();
  close_if_expired();
}

void agent::close_if_expired() {
  if (!expired_ || pending_ != 0) return;
  if (auto io = io_.lock()) io->close(token_expired_close_code, "token expired");
}

void agent::end_request() {
  bool was_full = !can_read();
  --pending_;
  if (expired_) return close_if_expired();
  if (was_full && can_read()) {
    if (auto io = io_.lock()) io->resume_reading();
  }
}

void agent::send(std::string frame) {
  if (auto io = io_.lock()) io->send(std::make_shared<const std::string>(std::move(frame)));
}

void agent::send_error(json echo, const protocol::error_info& error) {
  if (observer_) observer_->on_error_reply(error.code);
  if (log::enabled(log::level::debug)) {
    auto field = [&](const char* key) {
      auto it = echo.find(key);
      return it != echo.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    log::debug("error_reply", {{"src", src_alias()},
                               {"action", field("a")},
                               {"doc", field("c") + "/" + field("d")},
                               {"code", error.code},
                               {"message", error.message}});
  }
  send(protocol::encode_error_reply(std::move(echo), error));
}

void agent::on_frame(std::string_view frame) {
  if (closed_ || expired_) return;
  auto parsed = protocol::parse_request(frame, options_.message);
  if (auto* unreadable = std::get_if<protocol::unreadable_frame>(&parsed)) {
    // ShareDB closes a connection that sends something other than a JSON object.
    if (observer_) observer_->on_error_reply(unreadable->error.code);
    send(protocol::encode_bare_error(unreadable->error));
    if (auto io = io_.lock()) io->close(1007, unreadable->error.message);
    return;
  }
  if (auto* rejected = std::get_if<protocol::rejected_request>(&parsed)) {
    send_error(std::move(rejected->echo), rejected->error);
    return;
  }
  auto& req = std::get<protocol::request>(parsed);
  if (!requests_.try_take(std::chrono::steady_clock::now())) {
    // Answered, not stalled: the client learns why and can back off.
    send_error(std::move(req.echo), protocol::errors::rate_limited());
    return;
  }
  handle(req);
}

void agent::handle(protocol::request& req) {
  auto& body = req.body;
  if (auto* hs = std::get_if<protocol::handshake_request>(&body)) {
    // An id is honoured only when this server (or one sharing its secret)
    // minted it: the real id never leaves its owner, so holding it is the
    // proof. Anything else keeps the id given at connect; the client adopts it.
    if (hs->id && *hs->id != src_) {
      if (options_.identity && options_.identity->is_minted(*hs->id)) {
        set_src(*hs->id);
      } else if (observer_) {
        observer_->on_handshake_id_refused();
      }
    }
    send(protocol::encode_handshake(src_, src_alias_));
  } else if (auto* d = std::get_if<protocol::doc_request>(&body)) {
    handle_doc(req.action, std::move(req.echo), std::move(*d));
  } else if (auto* b = std::get_if<protocol::bulk_request>(&body)) {
    handle_bulk(req.action, std::move(req.echo), std::move(*b));
  } else if (auto* op = std::get_if<protocol::submit_request>(&body)) {
    handle_submit(std::move(req.echo), std::move(*op));
  } else if (auto* snap = std::get_if<protocol::snapshot_request>(&body)) {
    handle_snapshot(std::move(req.echo), std::move(*snap));
  } else if (std::holds_alternative<protocol::ping_request>(body)) {
    send(protocol::encode_pong());
  } else if (std::holds_alternative<protocol::query_unsubscribe_request>(body)) {
    send(protocol::encode_query_unsubscribe(req.echo));
  } else if (auto* unsupported = std::get_if<protocol::unsupported_request>(&body)) {
    send_error(std::move(req.echo), unsupported->error);
  } else if (options_.presence == nullptr) {
    send_error(std::move(req.echo), {"ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE", "Presence is not enabled on this server"});
  } else if (auto* ps = std::get_if<protocol::presence_subscribe_request>(&body)) {
    if (!may_use_channel(ps->channel)) {
      send_error(std::move(req.echo), protocol::errors::forbidden("read", ps->channel, ""));
      return;
    }
    if (ps->subscribe && !presence_channels_.contains(ps->channel) &&
        presence_channels_.size() >= options_.max_presence_channels) {
      send_error(std::move(req.echo), protocol::errors::presence_channel_limit(options_.max_presence_channels));
      return;
    }
    handle_presence_subscribe(std::move(req.echo), std::move(*ps));
  } else if (auto* pr = std::get_if<protocol::presence_resend_request>(&body)) {
    if (!may_use_channel(pr->channel)) {
      send_error(std::move(req.echo), protocol::errors::forbidden("read", pr->channel, ""));
      return;
    }
    handle_presence_resend(std::move(*pr));
  } else if (auto* p = std::get_if<protocol::presence_update_request>(&body)) {
    handle_presence(std::move(req.echo), std::move(*p));
  }
}

// ---- Presence -----------------------------------------------------------------

bool agent::may_use_channel(const std::string& channel) const {
  if (options_.access == nullptr || options_.access->reads_everything()) return true;
  // A channel is a document's ("collection.id", as sharedb's doc presence names it). Collections
  // and ids may hold dots, so one channel can name several documents: each must be readable, or a
  // token for `notes/*` would reach the presence of `notes.secret/plan` through "notes.secret.plan".
  bool names_one = false;
  for (auto dot = channel.find('.'); dot != std::string::npos; dot = channel.find('.', dot + 1)) {
    if (!options_.access->may_read(channel.substr(0, dot), channel.substr(dot + 1))) return false;
    names_one = true;
  }
  return names_one;
}

void agent::handle_presence_subscribe(json echo, protocol::presence_subscribe_request r) {
  auto& hub = *options_.presence;
  const std::string action = r.subscribe ? "ps" : "pu";
  auto known = presence_channels_.find(r.channel);
  if (known != presence_channels_.end() && r.seq < known->second) {
    // Older than a request already handled for this channel: acknowledged, changes nothing.
    send(protocol::encode_presence_subscribed(action, r.channel, r.seq));
    return;
  }
  if (!r.subscribe) {
    if (known != presence_channels_.end()) {
      hub.leave(r.channel, this);
      presence_channels_.erase(known);
    }
    forget_shown(r.channel);
    clear_presences(r.channel);
    send(protocol::encode_presence_subscribed(action, r.channel, r.seq));
    return;
  }
  const auto join = hub.join(r.channel, this, io_);
  if (join == presence_hub::join_result::full) {
    send_error(std::move(echo), protocol::errors::presence_server_channel_limit(options_.max_server_presence_channels));
    return;
  }
  const bool joined = join == presence_hub::join_result::joined;
  presence_channels_[r.channel] = r.seq;
  send(protocol::encode_presence_subscribed(action, r.channel, r.seq));
  if (!joined) return;
  if (presence_resends_.try_take(std::chrono::steady_clock::now())) {
    // Everyone on the channel, this connection too (after a reconnect its own cursor comes back),
    // sends what it shows again.
    auto frame = std::make_shared<const std::string>(protocol::encode_presence_resend(r.channel));
    hub.publish(r.channel, frame, nullptr, presence_hub::frame_kind::resend);
  } else {
    shown_incomplete_.insert(r.channel);  // what others show may not reach it: a `pr` asks them all
  }
}

void agent::handle_presence_resend(protocol::presence_resend_request r) {
  const bool member = presence_channels_.contains(r.channel);
  // Removals this client may have taken for stale first (they go to it alone, at the head).
  if (member) options_.presence->resend_removals(r.channel, this);
  if (presence_resends_.try_take(std::chrono::steady_clock::now())) {
    if (member && !shown_incomplete_.contains(r.channel)) {
      // The sharedb client asks when it took a presence for stale: the latest of each it was shown,
      // at the head, answers it, instead of every member sending to every member (n² frames).
      show_kept_again(r.channel);
    } else {
      shown_incomplete_.erase(r.channel);
      options_.presence->publish(r.channel,
                                 std::make_shared<const std::string>(protocol::encode_presence_resend(r.channel)), this,
                                 presence_hub::frame_kind::resend);
    }
  }
  send(protocol::encode_presence_resend_reply());
}

void agent::show_kept_again(const std::string& channel) {
  auto on_channel = shown_presences_.find(channel);
  if (on_channel == shown_presences_.end()) return;
  for (auto& [who, entry] : on_channel->second) {
    if (!entry.awaiting_ops) show_moved(entry.shown, true);  // a held one goes once its ops have
  }
}

void agent::handle_presence(json echo, protocol::presence_update_request r) {
  if (observer_) observer_->on_presence_received();
  if (!may_use_channel(r.channel)) {
    send_error(std::move(echo), protocol::errors::forbidden("read", r.channel, ""));
    return;
  }
  const bool doc_presence = r.collection || r.doc_id;
  if (doc_presence) {
    if (!r.collection || !r.doc_id || r.channel != *r.collection + "." + *r.doc_id) {
      send_error(std::move(echo), protocol::errors::presence_channel_mismatch());
      return;
    }
    if (!may_read(*r.collection, *r.doc_id)) {
      send_error(std::move(echo), protocol::errors::forbidden("read", *r.collection, *r.doc_id));
      return;
    }
  }
  if (r.type && *r.type != ot::type_uri && *r.type != ot::type_name) {
    send_error(std::move(echo), protocol::errors::presence_type_unsupported(*r.type));
    return;
  }
  const auto bytes = r.value.dump(-1, ' ', false, json::error_handler_t::replace).size();
  if (bytes > options_.max_presence_bytes) {
    send_error(std::move(echo), protocol::errors::presence_too_large(bytes, options_.max_presence_bytes));
    return;
  }
  auto key = std::make_pair(r.channel, r.id);
  const protocol::presence_update_request* shown = nullptr;
  if (auto channel = presences_.find(r.channel); channel != presences_.end()) {
    if (auto it = channel->second.find(r.id); it != channel->second.end()) shown = &it->second;
  }
  auto held = held_.find(key);
  const bool moving = presence_flights_.contains(r.channel);
  if (r.value.is_null() && shown == nullptr && !moving) {
    // Nothing of it reached the members (never sent, or still held back by the rate): nothing to
    // remove, so nothing is relayed; a flood of removals costs the others nothing.
    if (held != held_.end()) held_.erase(held);
    send(protocol::encode_presence(r, src_alias()));
    return;
  }
  if (shown == nullptr && held == held_.end() && !r.value.is_null()) {
    // A new presence: those shown, those held back and those being moved count alike.
    std::size_t count = presence_count_ + presence_in_flight_;
    if (count + held_.size() >= options_.max_presences) {
      for (const auto& [waiting, entry] : held_) {
        auto channel = presences_.find(waiting.first);
        if (channel == presences_.end() || !channel->second.contains(waiting.second)) ++count;
      }
    }
    if (count >= options_.max_presences) {
      send_error(std::move(echo), protocol::errors::presence_limit(options_.max_presences));
      return;
    }
  }
  if (shown != nullptr && r.pv && shown->pv && *r.pv < *shown->pv) {
    // Older than one already sent: its ack, but the members keep the newer one.
    send(protocol::encode_presence(r, src_alias()));
    return;
  }
  // A removal always goes at once: it must not leave a ghost behind (and only shown ones get here).
  if (!r.value.is_null() && !presence_broadcasts_.try_take(std::chrono::steady_clock::now())) {
    // Past the rate: acked now (the sender's callback), broadcast later as the latest of its presence.
    send(protocol::encode_presence(r, src_alias()));
    if (held != held_.end()) {
      if (observer_) observer_->on_presence_coalesced();
      held->second = {std::move(echo), std::move(r)};
    } else {
      held_.emplace(std::move(key), std::make_pair(std::move(echo), std::move(r)));
    }
    schedule_presence_flush();
    return;
  }
  if (held != held_.end()) held_.erase(held);  // this one is newer
  forward_presence(std::move(echo), std::move(r), true);
}

void agent::schedule_presence_flush() {
  if (flush_scheduled_) return;
  auto io = io_.lock();
  if (!io) return;
  flush_scheduled_ = true;
  const auto wait = std::chrono::milliseconds(static_cast<long>(1000.0 / options_.presence_rate) + 1);
  io->post_after(wait, [this, weak = std::weak_ptr<connection_io>(io)] {
    if (weak.lock()) flush_held_presences();
  });
}

void agent::flush_held_presences() {
  flush_scheduled_ = false;
  if (closed_) return;
  // The latest of each presence, as the rate allows; what is left waits for the next flush.
  const auto now = std::chrono::steady_clock::now();
  while (!held_.empty() && presence_broadcasts_.try_take(now)) {
    auto entry = std::move(held_.begin()->second);
    held_.erase(held_.begin());
    forward_presence(std::move(entry.first), std::move(entry.second), false);
  }
  if (!held_.empty()) schedule_presence_flush();
}

void agent::forward_presence(json echo, protocol::presence_update_request r, bool echo_to_sender) {
  const bool doc_presence = r.collection.has_value();
  if (doc_presence && r.version) {
    // Moved to the document's head through the ops committed since, so receivers show it at once.
    auto range = protocol::presence_selection(r.value);
    store::doc_key key{*r.collection, *r.doc_id};
    const auto version = *r.version;
    auto& flight = presence_flights_[r.channel];
    ++flight.in_flight;
    ++presence_in_flight_;
    const auto epoch = flight.epoch;
    documents_.transform_presence(key, version, src_, range,
                                  on_strand([this, echo = std::move(echo), r = std::move(r), range, echo_to_sender,
                                             epoch](doc::presence_result moved) mutable {
                                    auto it = presence_flights_.find(r.channel);
                                    const bool current = it != presence_flights_.end() && it->second.epoch == epoch;
                                    if (it != presence_flights_.end() && --it->second.in_flight == 0)
                                      presence_flights_.erase(it);
                                    --presence_in_flight_;
                                    if (moved.error && moved.error->code == "ERR_PRESENCE_TRANSFORM_FAILED") {
                                      send_error(std::move(echo), *moved.error);
                                      return;
                                    }
                                    if (moved.error) {
                                      // The document could not be read (the store unreachable): shown
                                      // at the version it was sent at rather than not at all.
                                      moved.version = *r.version;
                                      moved.cleared = false;
                                      moved.moved = false;
                                    }
                                    if (!current) {
                                      // The connection left the channel meanwhile, and its members were told it is
                                      // gone.
                                      if (echo_to_sender) send(protocol::encode_presence(r, src_alias()));
                                      return;
                                    }
                                    apply_presence_move(r, range, moved);
                                    publish_presence(std::move(r), echo_to_sender);
                                  }));
    return;
  }
  publish_presence(std::move(r), echo_to_sender);
}

void agent::publish_presence(protocol::presence_update_request presence, bool echo_to_sender) {
  auto frame = std::make_shared<const std::string>(protocol::encode_presence(presence, src_alias()));
  auto& on_channel = presences_[presence.channel];
  auto previous = on_channel.find(presence.id);
  if (presence.value.is_null()) {
    if (previous != on_channel.end()) {
      on_channel.erase(previous);
      --presence_count_;
    }
    if (on_channel.empty()) presences_.erase(presence.channel);
  } else if (previous == on_channel.end()) {
    ++presence_count_;
    auto kept = presence;
    kept.value = nullptr;  // only its address and pv are needed to clear it
    on_channel.emplace(presence.id, std::move(kept));
  } else {
    previous->second.pv = presence.pv;
    previous->second.version = presence.version;
  }
  if (presence.value.is_null()) {
    options_.presence->note_removal(presence.channel, presence, src_alias());
  } else {
    options_.presence->forget_removal(presence.channel, src_alias(), presence.id);
  }
  options_.presence->publish(presence.channel, frame, this, presence_hub::frame_kind::update, src_,
                             make_shown_presence(frame, presence, src_alias(), src_));
  if (!echo_to_sender) return;
  if (auto io = io_.lock()) io->send(std::move(frame));  // the ack: the same message
}

void agent::show_presence(std::shared_ptr<const shown_presence> shown) {
  auto io = io_.lock();
  if (!io || closed_) return;
  const auto& presence = shown->presence;
  if (!presence_channels_.contains(presence.channel)) {
    io->send_broadcast(shown->frame);  // left the channel since: as before, not kept
    return;
  }
  auto& on_channel = shown_presences_[presence.channel];
  const std::pair<std::string, std::string> who{shown->shown_src, presence.id};
  auto entry = on_channel.find(who);
  if (entry == on_channel.end()) {
    if (shown_count_ >= options_.max_kept_presences) {
      // Full: a removal on this channel makes room, else this one is only sent.
      auto removal = std::find_if(on_channel.begin(), on_channel.end(),
                                  [](const auto& kept) { return kept.second.shown->presence.value.is_null(); });
      if (removal == on_channel.end()) {
        if (on_channel.empty()) shown_presences_.erase(presence.channel);
        shown_incomplete_.insert(presence.channel);
        if (observer_) observer_->on_presence_unkept();
        io->send_broadcast(shown->frame);
        return;
      }
      on_channel.erase(removal);
      --shown_count_;
    }
    entry = on_channel.emplace(who, shown_entry{}).first;
    ++shown_count_;
  }
  entry->second = {shown, false, false};
  store::doc_key key{*presence.collection, *presence.doc_id};
  const auto given = client_version_of(key);
  if (*presence.version < given) {
    show_moved(std::move(shown), true);  // it would arrive stale
  } else if (*presence.version > given && live_subscriptions(key) != 0) {
    // Its ops are on their way here: the client gets them first. (A presence moved to the head
    // in the handler that committed an op reaches this connection through its sender's thread,
    // and can overtake the op's broadcast from the document's.)
    entry->second.awaiting_ops = true;
    hold_presence(std::move(key), presence.channel, who, std::move(shown));
  } else {
    io->send_broadcast(shown->frame);
  }
}

void agent::hold_presence(store::doc_key key, const std::string& channel,
                          const std::pair<std::string, std::string>& who, std::shared_ptr<const shown_presence> shown) {
  auto& held = awaiting_[std::move(key)];
  auto same = std::find_if(held.begin(), held.end(), [&](const awaiting_presence& waiting) {
    return waiting.who == who && waiting.channel == channel;
  });
  if (same != held.end()) {
    same->shown = std::move(shown);  // the first one's deadline: a stream of updates is not held for good
    return;
  }
  held.push_back({channel, who, std::move(shown), std::chrono::steady_clock::now() + options_.presence_ops_wait});
  arm_awaiting_timer(options_.presence_ops_wait);
}

void agent::arm_awaiting_timer(std::chrono::steady_clock::duration delay) {
  auto io = io_.lock();
  if (!io || awaiting_timer_) return;
  awaiting_timer_ = true;
  const auto wait = std::max(std::chrono::milliseconds(1), std::chrono::ceil<std::chrono::milliseconds>(delay));
  io->post_after(wait, [this, weak = std::weak_ptr<connection_io>(io)] {
    if (!weak.lock()) return;
    awaiting_timer_ = false;
    if (closed_) return;
    const auto now = std::chrono::steady_clock::now();
    release_awaiting(nullptr, now);
    if (awaiting_.empty()) return;
    auto earliest = std::chrono::steady_clock::time_point::max();
    for (const auto& [key, held] : awaiting_) {
      for (const auto& waiting : held) earliest = std::min(earliest, waiting.until);
    }
    arm_awaiting_timer(earliest - now);
  });
}

void agent::release_awaiting(const store::doc_key* only, std::chrono::steady_clock::time_point expired) {
  // Gathered first, sent after: nothing sent can change these maps under the loop.
  std::vector<std::pair<std::shared_ptr<const shown_presence>, bool>> due;  // (presence, to be moved)
  for (auto it = only ? awaiting_.find(*only) : awaiting_.begin(); it != awaiting_.end();) {
    const auto given = client_version_of(it->first);
    std::erase_if(it->second, [&](const awaiting_presence& waiting) {
      auto on_channel = shown_presences_.find(waiting.channel);
      if (on_channel == shown_presences_.end()) return true;
      auto entry = on_channel->second.find(waiting.who);
      // Gone, or replaced by one that was not held (sent already).
      if (entry == on_channel->second.end() || entry->second.shown != waiting.shown || !entry->second.awaiting_ops) {
        return true;
      }
      const auto version = *waiting.shown->presence.version;
      if (version > given && waiting.until > expired) return false;
      entry->second.awaiting_ops = false;
      due.emplace_back(waiting.shown, version < given);  // an ack came first and took the client past it
      return true;
    });
    it = it->second.empty() ? awaiting_.erase(it) : std::next(it);
    if (only) break;
  }
  auto io = io_.lock();
  for (auto& [shown, move] : due) {
    if (!io || closed_) return;
    if (move) {
      show_moved(std::move(shown), true);
    } else {
      io->send_broadcast(shown->frame);
    }
  }
}

void agent::show_presences_again(const store::doc_key& key, std::uint64_t acked) {
  if (auto it = subscriptions_.find(key); it != subscriptions_.end()) {
    for (auto& sub : it->second) sub->client_version = std::max(sub->client_version, acked + 1);
  }
  auto on_channel = shown_presences_.find(key.collection + "." + key.id);
  if (on_channel == shown_presences_.end()) return;
  if (!awaiting_.empty()) release_awaiting(&key, std::chrono::steady_clock::time_point::min());
  for (auto& [who, entry] : on_channel->second) {
    // One past the op is past it: the client takes that one as it is.
    if (*entry.shown->presence.version > acked || entry.given_again || entry.awaiting_ops) continue;
    if (entry.shown->presence.value.is_null()) entry.given_again = true;
    show_moved(entry.shown, false);
  }
}

void agent::show_moved(std::shared_ptr<const shown_presence> shown, bool first) {
  const auto& sent = shown->presence;
  auto range = sent.value.is_null() ? std::nullopt : protocol::presence_selection(sent.value);
  store::doc_key key{*sent.collection, *sent.doc_id};
  const auto version = *sent.version;
  auto origin_src = shown->origin_src;
  // Not a request: a move does not count toward the backlog that pauses reading.
  documents_.transform_presence(
      key, version, std::move(origin_src), range,
      [conn = io_.lock(), this, shown = std::move(shown), range, first](doc::presence_result moved) mutable {
        if (!conn) return;
        conn->post([this, shown = std::move(shown), range, first, moved = std::move(moved)]() mutable {
          if (closed_) return;
          auto on_channel = shown_presences_.find(shown->presence.channel);
          if (on_channel == shown_presences_.end()) return;
          auto entry = on_channel->second.find({shown->shown_src, shown->presence.id});
          // A newer one of this presence was shown meanwhile (a removal among them): this one is not.
          if (entry == on_channel->second.end() || entry->second.shown != shown) return;
          auto io = io_.lock();
          if (!io) return;
          if (moved.error) {
            // Not moved (the document unreadable, or the version past its cache): a first showing
            // goes as it came (the client asks again, `pr`); what was sent before stays.
            if (first) io->send_broadcast(shown->frame);
            return;
          }
          auto presence = shown->presence;
          apply_presence_move(presence, range, moved);
          auto frame = std::make_shared<const std::string>(protocol::encode_presence(presence, shown->shown_src));
          if (presence.value.is_null() && !first) {
            // A removal goes again once, then is forgotten.
            on_channel->second.erase(entry);
            --shown_count_;
            if (on_channel->second.empty()) shown_presences_.erase(on_channel);
          } else {
            entry->second.shown = std::make_shared<const shown_presence>(
                shown_presence{frame, std::move(presence), shown->shown_src, shown->origin_src});
          }
          io->send_broadcast(std::move(frame));
        });
      });
}

void agent::forget_shown(const std::string& channel) {
  shown_incomplete_.erase(channel);
  if (auto it = shown_presences_.find(channel); it != shown_presences_.end()) {
    shown_count_ -= it->second.size();
    shown_presences_.erase(it);
  }
}

void agent::clear_presences(const std::string& channel) {
  // Updates still held back or being moved are not shown after this.
  for (auto held = held_.lower_bound({channel, std::string()}); held != held_.end() && held->first.first == channel;) {
    held = held_.erase(held);
  }
  if (auto flight = presence_flights_.find(channel); flight != presence_flights_.end()) ++flight->second.epoch;
  auto it = presences_.find(channel);
  if (it == presences_.end()) return;
  auto left = std::move(it->second);
  presences_.erase(it);
  presence_count_ -= left.size();
  auto* hub = options_.presence;
  for (auto& [id, presence] : left) {
    presence.value = nullptr;  // same pv: receivers take it
    if (presence.collection && presence.doc_id && presence.version) {
      // At the document's head, or receivers would take it for stale and ask for a resend nobody answers.
      store::doc_key key{*presence.collection, *presence.doc_id};
      const auto version = *presence.version;
      documents_.transform_presence(
          key, version, src_, std::nullopt,
          [hub, presence = std::move(presence), shown = src_alias()](doc::presence_result moved) mutable {
            if (!moved.error) presence.version = moved.version;
            hub->note_removal(presence.channel, presence, shown);
            hub->publish(presence.channel,
                         std::make_shared<const std::string>(protocol::encode_presence(presence, shown)), nullptr);
          });
    } else {
      hub->note_removal(presence.channel, presence, src_alias());
      hub->publish(presence.channel,
                   std::make_shared<const std::string>(protocol::encode_presence(presence, src_alias())), nullptr);
    }
  }
}

std::shared_ptr<agent::subscription> agent::subscribe_slot(const store::doc_key& key) {
  // A new subscribe replaces the old ones once it is read (as ShareDB replaces the stream). Until
  // then they keep delivering: if the read fails, ShareDB keeps the old stream and the client
  // still counts the document as subscribed. Older ones still being read stay too: each one's
  // reply, if it is read, tells the client it is subscribed. (The backlog of requests in flight
  // bounds how many.)
  auto& live = subscriptions_[key];
  auto next = std::make_shared<subscription>(*this, io_);
  next->key = key;
  next->client_version = client_version_of(key);
  live.push_back(next);
  return next;
}

std::size_t agent::live_subscriptions(const store::doc_key& key) const {
  const auto it = subscriptions_.find(key);
  return it == subscriptions_.end() ? 0 : it->second.size();
}

std::uint64_t agent::client_version_of(const store::doc_key& key) const {
  std::uint64_t version = 0;
  if (auto it = subscriptions_.find(key); it != subscriptions_.end()) {
    for (const auto& sub : it->second) version = std::max(version, sub->client_version);
  }
  return version;
}

void agent::settle_subscription(const store::doc_key& key, const std::shared_ptr<subscription>& sub, bool read) {
  auto it = subscriptions_.find(key);
  if (it == subscriptions_.end()) return;  // unsubscribed meanwhile
  auto& live = it->second;
  const auto found = std::find(live.begin(), live.end(), sub);
  if (found == live.end()) return;
  if (read) {
    // It takes over: the older ones go (the newer ones are still being read).
    for (auto older = live.begin(); older != found; ++older) {
      sub->client_version = std::max(sub->client_version, (*older)->client_version);
      release(*older);
    }
    live.erase(live.begin(), found);
    return;
  }
  release(sub);
  live.erase(found);
  if (live.empty()) subscriptions_.erase(it);
}

void agent::release(const std::shared_ptr<subscription>& sub) {
  sub->deactivate();
  // The document drops its pointer on its executor; the subscription stays
  // alive until then through the captured shared_ptr.
  if (sub->handle) documents_.unsubscribe(sub->handle, sub.get(), [keep = sub] {});
}

void agent::release_all(const std::vector<std::shared_ptr<subscription>>& live) {
  for (const auto& sub : live) release(sub);
}

void agent::unsubscribe(const store::doc_key& key) {
  auto it = subscriptions_.find(key);
  if (it == subscriptions_.end()) return;
  release_all(it->second);
  subscriptions_.erase(it);
}

void agent::handle_doc(const std::string& action, json echo, protocol::doc_request r) {
  store::doc_key key{r.collection, r.id};
  if (action == "u") {
    unsubscribe(key);
    send(protocol::encode_doc_reply(action, r.collection, r.id, nullptr));
    return;
  }
  if (!may_read(r.collection, r.id)) {
    send_error(std::move(echo), protocol::errors::forbidden("read", r.collection, r.id));
    return;
  }
  if (action == "s" && !subscriptions_.contains(key) && !may_subscribe(1)) {
    send_error(std::move(echo), protocol::errors::subscription_limit(subscriptions_.size()));
    return;
  }
  if (action == "s" && live_subscriptions(key) >= max_live_subscriptions_per_document) {
    send_error(std::move(echo), protocol::errors::subscribes_in_flight(key.id, max_live_subscriptions_per_document));
    return;
  }
  auto respond = [this, echo = std::move(echo), action, key, asked = r.version](doc::read_result result,
                                                                                subscription* sub) mutable {
    if (result.error) {
      send_error(std::move(echo), *result.error);
      return;
    }
    // Presences older than the reply are moved before they are sent.
    if (sub) sub->client_version = std::max(sub->client_version, version_given(result, asked));
    send_ops(result.ops);
    send(protocol::encode_doc_reply(action, key.collection, key.id, result.snap ? &*result.snap : nullptr));
    if (sub) sub->mark_ready();
  };
  if (action == "f") {
    documents_.fetch(key, r.version, on_strand([respond = std::move(respond)](doc::read_result result) mutable {
                       respond(std::move(result), nullptr);
                     }),
                     std::chrono::steady_clock::now());
    return;
  }
  auto sub = subscribe_slot(key);
  sub->handle = documents_.subscribe(
      key, sub, r.version, on_strand([this, key, sub, respond = std::move(respond)](doc::read_result result) mutable {
        settle_subscription(key, sub, !result.error);
        respond(std::move(result), sub.get());
      }),
      std::chrono::steady_clock::now());
}

// A bulk fetch/subscribe in progress. Documents are read a few at a time and
// each answer is encoded as it arrives, so a bulk request over many large
// documents never holds them all at once; the array form's reply goes out in
// pages (each a valid bulk reply naming some of the documents, which ShareDB's
// client handles like one), the map form's as one reply after the ops.
struct agent::bulk {
  std::string action;
  std::string collection;
  json echo;
  bool map_form = false;
  bool subscribe = false;
  std::vector<std::pair<std::string, std::optional<std::uint64_t>>> wanted;
  std::vector<std::shared_ptr<subscription>> subs;
  std::size_t next = 0;                   // the next document to read
  std::size_t done = 0;                   // answers received
  std::string page;                       // array form: `"id":{...}` entries not yet sent
  std::vector<std::size_t> page_members;  // their indexes (subscriptions to mark ready once sent)
  bool page_sent = false;
  std::vector<doc::read_result> results;  // map form: kept for one reply (their ops are shared frames)
  /// When the request came: its reads (a few at a time) wait for an unavailable store until
  /// --max-store-wait-ms after it, together.
  std::chrono::steady_clock::time_point asked = std::chrono::steady_clock::now();
};

namespace {
// Reads of one bulk request in flight at once, and the size at which a page of its reply is sent.
constexpr std::size_t bulk_window = 16;
constexpr std::size_t bulk_page_bytes = 1u << 20;
}  // namespace

void agent::handle_bulk(const std::string& action, json echo, protocol::bulk_request r) {
  if (action == "bu") {
    for (const auto& id : r.ids) unsubscribe({r.collection, id});
    send(protocol::encode_bulk_done("bu", echo, r.collection));
    return;
  }
  // All or nothing: a bulk request naming a document this connection may not read is refused whole.
  auto readable = [&](const std::string& id) { return may_read(r.collection, id); };
  const std::string* denied = nullptr;
  if (r.map_form) {
    for (const auto& entry : r.versions) {
      if (!denied && !readable(entry.first)) denied = &entry.first;
    }
  } else {
    for (const auto& id : r.ids) {
      if (!denied && !readable(id)) denied = &id;
    }
  }
  if (denied != nullptr) {
    send_error(std::move(echo), protocol::errors::forbidden("read", r.collection, *denied));
    return;
  }
  auto b = std::make_shared<bulk>();
  b->action = action;
  b->collection = r.collection;
  b->map_form = r.map_form;
  b->subscribe = action == "bs";
  if (r.map_form) {
    for (auto& [id, v] : r.versions) b->wanted.emplace_back(std::move(id), v);
  } else {
    for (auto& id : r.ids) b->wanted.emplace_back(std::move(id), std::nullopt);
  }
  if (b->subscribe) {
    std::size_t fresh = 0;
    for (const auto& w : b->wanted) fresh += subscriptions_.contains({r.collection, w.first}) ? 0u : 1u;
    if (!may_subscribe(fresh)) {
      send_error(std::move(echo),
                 protocol::errors::subscription_limit(subscriptions_.size(), fresh, options_.max_subscriptions));
      return;
    }
    for (const auto& w : b->wanted) {
      if (live_subscriptions({r.collection, w.first}) < max_live_subscriptions_per_document) continue;
      send_error(std::move(echo), protocol::errors::subscribes_in_flight(w.first, max_live_subscriptions_per_document));
      return;
    }
    // Every slot now (the limits hold), each document's read later.
    b->subs.reserve(b->wanted.size());
    for (const auto& w : b->wanted) b->subs.push_back(subscribe_slot({r.collection, w.first}));
  }
  b->echo = std::move(echo);
  if (b->map_form) b->results.resize(b->wanted.size());
  if (b->wanted.empty()) {
    finish_bulk(*b);
    return;
  }
  for (std::size_t n = 0; n < bulk_window && b->next < b->wanted.size(); ++n) read_next(b);
}

void agent::read_next(const std::shared_ptr<bulk>& b) {
  if (expired_) return;  // its token ran out: the connection closes once reads in flight are back
  std::size_t i = b->next++;
  store::doc_key key{b->collection, b->wanted[i].first};
  auto done = on_strand([this, b, i, key](doc::read_result result) {
    // The map form's reply is one for all: its subscriptions take over once all are read (finish_bulk).
    if (b->subscribe && !b->map_form) settle_subscription(key, b->subs[i], !result.error);
    on_bulk_answer(b, i, std::move(result));
  });
  if (b->subscribe && b->subs[i]->active()) {
    auto& sub = b->subs[i];
    sub->handle = documents_.subscribe(key, sub, b->wanted[i].second, std::move(done), b->asked);
    return;
  }
  // A fetch, or a subscription dropped (`u`, `bu`, expiry, or taken over by a newer subscribe) before its turn:
  // the same answer, without leaving a subscriber nobody will remove.
  documents_.fetch(key, b->wanted[i].second, std::move(done), b->asked);
}

void agent::on_bulk_answer(const std::shared_ptr<bulk>& b, std::size_t i, doc::read_result result) {
  ++b->done;
  if (b->subscribe && !result.error) {
    auto& sub = *b->subs[i];
    sub.client_version = std::max(sub.client_version, version_given(result, b->wanted[i].second));
  }
  if (b->map_form) {
    b->results[i] = std::move(result);
  } else if (result.error || result.snap) {
    if (!b->page.empty()) b->page.push_back(',');
    protocol::json_text::append_string(b->page, b->wanted[i].first);
    b->page.push_back(':');
    if (result.error) {
      protocol::append_error_object(b->page, *result.error);
    } else {
      protocol::append_snapshot_json(b->page, *result.snap);
    }
    b->page_members.push_back(i);
    if (b->page.size() >= bulk_page_bytes && b->done < b->wanted.size()) send_bulk_page(*b);
  } else {
    b->page_members.push_back(i);
  }
  if (b->done == b->wanted.size()) {
    finish_bulk(*b);
  } else if (b->next < b->wanted.size()) {
    read_next(b);
  }
}

void agent::send_bulk_page(bulk& b) {
  send(protocol::encode_bulk_page(b.action, b.collection, b.page));
  b.page.clear();
  b.page_sent = true;
  if (b.subscribe) {
    for (auto i : b.page_members) b.subs[i]->mark_ready();
  }
  b.page_members.clear();
}

void agent::finish_bulk(bulk& b) {
  if (!b.map_form) {
    if (!b.page.empty() || !b.page_sent || !b.page_members.empty()) send_bulk_page(b);
    return;
  }
  auto mark_all_ready = [&b] {
    for (auto& sub : b.subs) sub->mark_ready();
  };
  const bool failed = std::any_of(b.results.begin(), b.results.end(), [](const auto& r) { return r.error; });
  if (b.subscribe) {
    // As ShareDB, which destroys the streams the request opened when one document fails: the client
    // takes the error for each document named, so none of this request's subscriptions stays. Those
    // made before it stay (ShareDB keeps their old stream, and the client still counts them as
    // subscribed); they kept delivering meanwhile, so the client misses nothing.
    for (std::size_t i = 0; i < b.wanted.size(); ++i)
      settle_subscription({b.collection, b.wanted[i].first}, b.subs[i], !failed);
  }
  if (failed) {
    for (auto& result : b.results) {
      if (!result.error) continue;
      send_error(std::move(b.echo), *result.error);
      break;
    }
    mark_all_ready();
    return;
  }
  for (auto& result : b.results) send_ops(result.ops);
  send(protocol::encode_bulk_done(b.action, b.echo, b.collection));
  mark_all_ready();
}

void agent::handle_submit(json echo, protocol::submit_request r) {
  if (!may_write(r.collection, r.id)) {
    // A read-only connection's op is refused before anything else looks at it.
    send_error(std::move(echo), protocol::errors::forbidden("write", r.collection, r.id));
    return;
  }
  if (std::holds_alternative<oplog::create_body>(r.body) && !creates_.try_take(std::chrono::steady_clock::now())) {
    send_error(std::move(echo), protocol::errors::create_rate_limited());
    return;
  }
  if (r.src && *r.src != src_) {
    // Only the connection's own id: another's would let this client pass its
    // ops off as that client's (taken for its resends, hidden from it).
    send_error(std::move(echo), protocol::errors::src_not_owned());
    return;
  }
  oplog::submission op;
  op.src = src_;
  op.author = options_.author;
  op.seq = r.seq;
  op.version = r.version;
  op.body = std::move(r.body);
  auto collection = r.collection;
  auto id = r.id;
  documents_.submit({r.collection, r.id}, std::move(op),
                    on_strand([this, echo = std::move(echo), collection, id](doc::submit_result result) mutable {
                      if (result.error) {
                        send_error(std::move(echo), *result.error);
                        return;
                      }
                      send_ops(result.missed);
                      send(protocol::encode_ack(collection, id, result.src, result.seq, result.version));
                      if (!shown_presences_.empty()) show_presences_again({collection, id}, result.version);
                    }));
}

void agent::handle_snapshot(json echo, protocol::snapshot_request r) {
  if (!may_read(r.collection, r.id)) {
    send_error(std::move(echo), protocol::errors::forbidden("read", r.collection, r.id));
    return;
  }
  store::doc_key key{r.collection, r.id};
  if (!r.by_timestamp) {
    reply_snapshot_at(std::move(echo), key, r.version);
    return;
  }
  if (!r.timestamp_ms) {
    reply_snapshot_at(std::move(echo), key, std::nullopt);
    return;
  }
  documents_.snapshot_at_time(key, *r.timestamp_ms,
                              on_strand([this, echo = std::move(echo)](ot::result<oplog::snapshot> snap) mutable {
                                if (!snap)
                                  return send_error(std::move(echo), protocol::to_read_error_info(snap.error()));
                                send_snapshot(echo, *snap);
                              }));
}

void agent::send_snapshot(json& echo, const oplog::snapshot& snap) {
  send(protocol::encode_snapshot_reply(echo, snap));
}

void agent::reply_snapshot_at(json echo, const store::doc_key& key, std::optional<std::uint64_t> version) {
  if (!version) {
    documents_.fetch(key, std::nullopt, on_strand([this, echo = std::move(echo)](doc::read_result result) mutable {
                       if (result.error) return send_error(std::move(echo), *result.error);
                       send_snapshot(echo, *result.snap);
                     }),
                     std::chrono::steady_clock::now());
    return;
  }
  documents_.snapshot_at(key, *version,
                         on_strand([this, echo = std::move(echo)](ot::result<oplog::snapshot> snap) mutable {
                           if (!snap) return send_error(std::move(echo), protocol::to_read_error_info(snap.error()));
                           send_snapshot(echo, *snap);
                         }));
}

void agent::on_closed() {
  if (closed_) return;
  closed_ = true;
  for (auto& [key, live] : subscriptions_) release_all(live);
  subscriptions_.clear();
  if (options_.presence != nullptr) {
    // Off every channel first, so that the clears below reach only the others.
    for (const auto& [channel, seq] : presence_channels_) options_.presence->leave(channel, this);
    presence_channels_.clear();
    shown_presences_.clear();
    shown_incomplete_.clear();
    shown_count_ = 0;
    std::vector<std::string> channels;
    channels.reserve(presences_.size());
    for (const auto& [channel, ids] : presences_) channels.push_back(channel);
    for (const auto& channel : channels) clear_presences(channel);
  }
}

}  // namespace otsync::server
