#include "otsync/server/presence_hub.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "otsync/server/agent.hpp"
#include "otsync/server/log.hpp"

namespace otsync::server {
namespace {

using json = nlohmann::json;

/// The fields of a `p` frame another instance published (it was written by
/// `protocol::encode_presence`); nullopt when it is not one.
struct remote_frame {
  std::string src;
  protocol::presence_update_request presence;
};

std::optional<remote_frame> read_remote_frame(std::string_view frame) {
  auto message = json::parse(frame, nullptr, false);
  if (!message.is_object()) return std::nullopt;
  auto text = [&](const char* name) -> const std::string* {
    auto it = message.find(name);
    return it != message.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
  };
  auto number = [&](const char* name) -> std::optional<std::uint64_t> {
    auto it = message.find(name);
    if (it == message.end() || !it->is_number_unsigned()) return std::nullopt;
    return it->get<std::uint64_t>();
  };
  const auto* channel = text("ch");
  const auto* src = text("src");
  const auto* id = text("id");
  if (!channel || !src || !id || !message.contains("p")) return std::nullopt;
  remote_frame out;
  out.src = *src;
  out.presence.channel = *channel;
  out.presence.id = *id;
  out.presence.value = std::move(message["p"]);
  out.presence.pv = number("pv");
  out.presence.version = number("v");
  if (const auto* c = text("c")) out.presence.collection = *c;
  if (const auto* d = text("d")) out.presence.doc_id = *d;
  if (const auto* t = text("t")) out.presence.type = *t;
  return out;
}

// "KIND\nSRC\nFRAME": SRC is the sender's real id (ids hold no newline).
std::string bus_payload(presence_hub::frame_kind kind, std::string_view origin_src, std::string_view frame) {
  std::string payload;
  payload.reserve(frame.size() + origin_src.size() + 3);
  payload += static_cast<char>(kind);
  payload += '\n';
  payload += origin_src;
  payload += '\n';
  payload += frame;
  return payload;
}

/// Hands `frame` to `io` on its executor: as a shown presence when it is one.
void post_to(const std::shared_ptr<connection_io>& io, const doc::shared_frame& frame,
             const std::shared_ptr<const shown_presence>& shown) {
  io->post([weak = std::weak_ptr<connection_io>(io), frame, shown] {
    auto alive = weak.lock();
    if (!alive) return;
    if (shown) {
      alive->show_presence(shown);
    } else {
      alive->send_broadcast(frame);
    }
  });
}

}  // namespace

std::shared_ptr<const shown_presence> make_shown_presence(doc::shared_frame frame,
                                                          const protocol::presence_update_request& presence,
                                                          std::string shown_src, std::string origin_src) {
  if (!presence.collection || !presence.doc_id || !presence.version) return nullptr;
  return std::make_shared<const shown_presence>(
      shown_presence{std::move(frame), presence, std::move(shown_src), std::move(origin_src)});
}

void apply_presence_move(protocol::presence_update_request& presence, const std::optional<ot::selection>& range,
                         const doc::presence_result& moved) {
  presence.version = moved.version;
  if (moved.cleared) {
    presence.value = nullptr;
  } else if (moved.range && range && moved.moved) {
    protocol::set_presence_selection(presence.value, *moved.range);
  }
}

void presence_hub::start() {
  if (!options_.bus) return;
  options_.bus->start({[this](std::string_view channel, std::string_view instance, std::string_view payload) {
                         on_remote_message(channel, instance, payload);
                       },
                       [this](std::string_view channel, bool reconnected) { on_subscribed(channel, reconnected); },
                       [this](std::string_view instance) { on_instance_lost(instance); },
                       [this](std::string_view instance) { on_instance_back(instance); }});
}

presence_hub::join_result presence_hub::join(const std::string& channel, const void* key,
                                             std::weak_ptr<connection_io> io) {
  std::size_t count = 0;
  {
    std::lock_guard lock(mutex_);
    auto found = channels_.find(channel);
    if (found == channels_.end() && channels_.size() >= options_.max_channels) return join_result::full;
    auto& members = found != channels_.end() ? found->second : channels_[channel];
    if (std::any_of(members.begin(), members.end(), [&](const member& m) { return m.key == key; })) {
      return join_result::already;
    }
    if (members.empty()) {
      // Under the lock, so that a join and the last leave reach the bus in order.
      if (options_.bus) options_.bus->join(channel);
      // A new generation: an update from before the channel emptied is not shown after.
      channel_epochs_[channel] = ++epoch_counter_;
    }
    members.push_back({key, std::move(io)});
    count = channels_.size();
  }
  if (options_.observer) options_.observer->on_presence_channels(count);
  return join_result::joined;
}

void presence_hub::leave(const std::string& channel, const void* key) {
  std::size_t count = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    std::erase_if(it->second, [&](const member& m) { return m.key == key; });
    if (it->second.empty()) {
      channels_.erase(it);
      if (options_.bus) options_.bus->leave(channel);
      channel_epochs_.erase(channel);
      if (auto kept = removals_.find(channel); kept != removals_.end()) {
        removals_count_ -= kept->second.size();
        removals_.erase(kept);
      }
      // Nobody here shows them any more, and their `p: null` will not be heard.
      if (auto remote = remote_.find(channel); remote != remote_.end()) {
        remote_count_ -= remote->second.size();
        remote_.erase(remote);
        report_remote_count_locked();
      }
    }
    count = channels_.size();
  }
  if (options_.observer) options_.observer->on_presence_channels(count);
}

std::size_t presence_hub::publish(const std::string& channel, const doc::shared_frame& frame, const void* except,
                                  frame_kind kind, std::string_view origin_src,
                                  std::shared_ptr<const shown_presence> shown) {
  if (options_.bus) options_.bus->publish(channel, bus_payload(kind, origin_src, *frame));
  return deliver_locally(channel, frame, except, std::move(shown));
}

void presence_hub::deliver_presence(const std::string& channel, const protocol::presence_update_request& presence,
                                    const std::string& shown_src, const void* except) {
  auto frame = std::make_shared<const std::string>(protocol::encode_presence(presence, shown_src));
  deliver_locally(channel, frame, except, make_shown_presence(frame, presence, shown_src, {}));
}

std::size_t presence_hub::deliver_locally(const std::string& channel, const doc::shared_frame& frame,
                                          const void* except, std::shared_ptr<const shown_presence> shown) {
  std::vector<std::shared_ptr<connection_io>> targets;
  {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(channel);
    if (it == channels_.end()) return 0;
    targets.reserve(it->second.size());
    for (const auto& m : it->second) {
      if (m.key == except) continue;
      if (auto io = m.io.lock()) targets.push_back(std::move(io));
    }
  }
  // Outside the lock: posting runs no handler inline, but may take each connection's executor's queue lock.
  for (auto& io : targets) {
    post_to(io, frame, shown);
  }
  if (options_.observer && !targets.empty()) options_.observer->on_presence_delivered(targets.size());
  return targets.size();
}

void presence_hub::on_remote_message(std::string_view channel_view, std::string_view instance,
                                     std::string_view payload) {
  if (payload.size() < 2 || payload[1] != '\n') return;
  const auto kind = static_cast<frame_kind>(payload[0]);
  payload.remove_prefix(2);
  const auto newline = payload.find('\n');
  if (newline == std::string_view::npos) return;
  std::string origin_src(payload.substr(0, newline));  // moved below; a copy goes with what is shown
  auto frame = std::make_shared<const std::string>(payload.substr(newline + 1));
  std::string channel(channel_view);
  if (kind == frame_kind::resend) {
    deliver_locally(channel, frame, nullptr);
    return;
  }
  if (kind != frame_kind::update) return;
  auto read = read_remote_frame(*frame);
  if (!read || read->presence.channel != channel) return;
  log::debug("presence_remote", {{"channel", channel},
                                 {"instance", std::string(instance)},
                                 {"id", read->presence.id},
                                 {"null", read->presence.value.is_null() ? "yes" : "no"}});
  std::uint64_t epoch = 0;
  {
    std::lock_guard lock(mutex_);
    if (!channels_.contains(channel)) return;  // left meanwhile
    epoch = epoch_locked(channel, std::string(instance));
  }
  remote_key key{std::string(instance), std::move(read->src), read->presence.id};
  auto& presence = read->presence;
  if (!options_.move || !presence.collection || !presence.doc_id || !presence.version) {
    show_remote(channel, std::move(key), std::move(presence), epoch, std::move(frame), std::move(origin_src));
    return;
  }
  // Moved to this instance's head on the document's executor, as this instance's own presences are,
  // so its clients have every op up to the version it shows (and show it at once).
  auto range = presence.value.is_null() ? std::nullopt : protocol::presence_selection(presence.value);
  store::doc_key doc{*presence.collection, *presence.doc_id};
  const auto version = *presence.version;
  options_.move(
      doc, version, origin_src, range,
      [this, channel, key = std::move(key), presence = std::move(presence), range, epoch, frame = std::move(frame),
       origin_src](doc::presence_result moved) mutable {
        if (moved.error) {
          // Older than this instance's cache: shown as it came; a receiver behind asks again (`pr`).
          show_remote(channel, std::move(key), std::move(presence), epoch, std::move(frame), std::move(origin_src));
          return;
        }
        apply_presence_move(presence, range, moved);
        auto shown = std::make_shared<const std::string>(protocol::encode_presence(presence, std::get<1>(key)));
        show_remote(channel, std::move(key), std::move(presence), epoch, std::move(shown), std::move(origin_src));
      });
}

std::uint64_t presence_hub::epoch_locked(const std::string& channel, const std::string& instance) const {
  auto by_instance = instance_epochs_.find(instance);
  auto by_channel = channel_epochs_.find(channel);
  return std::max(by_instance == instance_epochs_.end() ? 0 : by_instance->second,
                  by_channel == channel_epochs_.end() ? 0 : by_channel->second);
}

void presence_hub::show_remote(const std::string& channel, remote_key key, protocol::presence_update_request presence,
                               std::uint64_t epoch, doc::shared_frame frame, std::string origin_src) {
  auto shown = make_shown_presence(frame, presence, std::get<1>(key), std::move(origin_src));
  {
    std::lock_guard lock(mutex_);
    if (!channels_.contains(channel)) return;
    // Its instance was lost, or the channel cleared, since it arrived: a ghost if shown now.
    if (epoch_locked(channel, std::get<0>(key)) != epoch) {
      log::debug("presence_remote_stale", {{"channel", channel}, {"id", std::get<2>(key)}});
      return;
    }
    if (presence.value.is_null()) {
      if (auto it = remote_.find(channel); it != remote_.end()) {
        remote_count_ -= it->second.erase(key);
        if (it->second.empty()) remote_.erase(it);
      }
      note_removal_locked(channel, presence, std::get<1>(key));
    } else {
      if (auto kept = removals_.find(channel); kept != removals_.end()) {
        removals_count_ -= std::erase_if(kept->second, [&](const removal& r) {
          return r.shown_src == std::get<1>(key) && r.presence.id == std::get<2>(key);
        });
      }
      presence.value = true;  // only its address and pv are needed to clear it
      auto& on_channel = remote_[channel];
      auto found = on_channel.find(key);
      if (found != on_channel.end()) {
        found->second = std::move(presence);
      } else if (remote_count_ < options_.max_remote_presences) {
        on_channel.emplace(std::move(key), std::move(presence));
        ++remote_count_;
      }
      if (on_channel.empty()) remote_.erase(channel);
    }
    report_remote_count_locked();
  }
  deliver_locally(channel, frame, nullptr, std::move(shown));
}

void presence_hub::on_subscribed(std::string_view channel_view, bool reconnected) {
  std::string channel(channel_view);
  log::debug("presence_subscribed", {{"channel", channel}, {"reconnected", reconnected ? "yes" : "no"}});
  if (reconnected) {
    // Messages may have been missed, `p: null` among them: clear what others showed, then ask
    // everyone (the members here too: others may have cleared theirs) to show it again.
    std::vector<std::pair<std::string, protocol::presence_update_request>> gone;
    {
      std::lock_guard lock(mutex_);
      channel_epochs_[channel] = ++epoch_counter_;
      if (auto it = remote_.find(channel); it != remote_.end()) {
        for (auto& [key, presence] : it->second) gone.emplace_back(std::get<1>(key), std::move(presence));
        remote_count_ -= it->second.size();
        remote_.erase(it);
        report_remote_count_locked();
      }
    }
    clear_remote(channel, std::move(gone));
  }
  // What the others published before the subscription was in place was missed, and so were their
  // requests: an instance that subscribed first asked before this one listened, so the members
  // here show theirs again too (a first subscription as much as a renewed one).
  ask_to_resend(channel, true);
}

void presence_hub::on_instance_lost(std::string_view instance) {
  log::debug("presence_instance_lost", {{"instance", std::string(instance)}});
  std::vector<std::pair<std::string, std::vector<std::pair<std::string, protocol::presence_update_request>>>> gone;
  {
    std::lock_guard lock(mutex_);
    // One entry per lost instance id (ids are new at every start): bounded by forgetting them all
    // now and then; an update then in flight from a long-lost instance is the only thing at risk.
    if (instance_epochs_.size() >= 4096) instance_epochs_.clear();
    instance_epochs_[std::string(instance)] = ++epoch_counter_;
    for (auto channel = remote_.begin(); channel != remote_.end();) {
      std::vector<std::pair<std::string, protocol::presence_update_request>> left;
      auto& on_channel = channel->second;
      for (auto it = on_channel.lower_bound({std::string(instance), {}, {}});
           it != on_channel.end() && std::get<0>(it->first) == instance;) {
        left.emplace_back(std::get<1>(it->first), std::move(it->second));
        it = on_channel.erase(it);
        --remote_count_;
      }
      if (!left.empty()) gone.emplace_back(channel->first, std::move(left));
      channel = on_channel.empty() ? remote_.erase(channel) : std::next(channel);
    }
    report_remote_count_locked();
  }
  for (auto& [channel, left] : gone) clear_remote(channel, std::move(left));
}

void presence_hub::on_instance_back(std::string_view instance) {
  log::debug("presence_instance_back", {{"instance", std::string(instance)}});
  // Its presences were cleared here and elsewhere: ask on every channel with members here.
  std::vector<std::string> channels;
  {
    std::lock_guard lock(mutex_);
    channels.reserve(channels_.size());
    for (const auto& [channel, members] : channels_) channels.push_back(channel);
  }
  for (const auto& channel : channels) ask_to_resend(channel, false);
}

void presence_hub::ask_to_resend(const std::string& channel, bool here_too) {
  auto frame = std::make_shared<const std::string>(protocol::encode_presence_resend(channel));
  if (options_.bus) options_.bus->publish(channel, bus_payload(frame_kind::resend, {}, *frame));
  if (here_too) deliver_locally(channel, frame, nullptr);
}

void presence_hub::clear_remote(const std::string& channel,
                                std::vector<std::pair<std::string, protocol::presence_update_request>> gone) {
  for (auto& [src, presence] : gone) {
    presence.value = nullptr;  // same pv: receivers take it
    note_removal(channel, presence, src);
    if (options_.move && presence.collection && presence.doc_id && presence.version) {
      store::doc_key key{*presence.collection, *presence.doc_id};
      const auto version = *presence.version;
      options_.move(key, version, {}, std::nullopt,
                    [this, channel, src = std::move(src), presence](doc::presence_result moved) mutable {
                      if (!moved.error) presence.version = moved.version;
                      deliver_presence(channel, presence, src, nullptr);
                    });
    } else {
      deliver_presence(channel, presence, src, nullptr);
    }
  }
}

namespace {
constexpr std::size_t removals_kept_per_channel = 128;
constexpr std::size_t removals_kept_in_all = 50000;  // about 10 MB
constexpr auto removal_kept_for = std::chrono::seconds(40);
}  // namespace

void presence_hub::note_removal(const std::string& channel, protocol::presence_update_request presence,
                                std::string shown_src) {
  std::lock_guard lock(mutex_);
  note_removal_locked(channel, std::move(presence), std::move(shown_src));
}

void presence_hub::note_removal_locked(const std::string& channel, protocol::presence_update_request presence,
                                       std::string shown_src) {
  if (!channels_.contains(channel)) return;  // nobody here to ask
  if (removals_count_ >= removals_kept_in_all) return;
  auto& kept = removals_[channel];
  removals_count_ -=
      std::erase_if(kept, [&](const removal& r) { return r.shown_src == shown_src && r.presence.id == presence.id; });
  presence.value = nullptr;
  if (options_.post_after) {
    // Each again 1, 3, 7, 15 and 30 s later: once a client pauses, one arrives when it can take it.
    for (auto delay : {1000, 3000, 7000, 15000, 30000}) {
      options_.post_after(std::chrono::milliseconds(delay),
                          [this, channel, shown_src, id = presence.id] { repeat_removal(channel, shown_src, id); });
    }
  }
  kept.push_back({std::move(presence), std::move(shown_src), std::chrono::steady_clock::now()});
  ++removals_count_;
  // The oldest go: past their time, or past the channel's share.
  const auto oldest = std::chrono::steady_clock::now() - removal_kept_for;
  while (!kept.empty() && (kept.size() > removals_kept_per_channel || kept.front().at < oldest)) {
    kept.pop_front();
    --removals_count_;
  }
}

void presence_hub::repeat_removal(const std::string& channel, const std::string& shown_src, const std::string& id) {
  std::optional<removal> again;
  {
    std::lock_guard lock(mutex_);
    auto kept = removals_.find(channel);
    if (kept == removals_.end()) return;
    const auto oldest = std::chrono::steady_clock::now() - removal_kept_for;
    for (const auto& r : kept->second) {
      if (r.shown_src == shown_src && r.presence.id == id && r.at >= oldest) again = r;
    }
  }
  if (!again) return;
  auto show = [this, channel](protocol::presence_update_request& presence, const std::string& src) {
    deliver_presence(channel, presence, src, nullptr);
  };
  if (options_.move && again->presence.collection && again->presence.doc_id && again->presence.version) {
    store::doc_key key{*again->presence.collection, *again->presence.doc_id};
    const auto version = *again->presence.version;
    options_.move(key, version, {}, std::nullopt, [show, r = std::move(*again)](doc::presence_result moved) mutable {
      if (!moved.error) r.presence.version = moved.version;
      show(r.presence, r.shown_src);
    });
  } else {
    show(again->presence, again->shown_src);
  }
}

void presence_hub::forget_removal(const std::string& channel, const std::string& shown_src, const std::string& id) {
  std::lock_guard lock(mutex_);
  auto kept = removals_.find(channel);
  if (kept == removals_.end()) return;
  removals_count_ -=
      std::erase_if(kept->second, [&](const removal& r) { return r.shown_src == shown_src && r.presence.id == id; });
  if (kept->second.empty()) removals_.erase(kept);
}

void presence_hub::resend_removals(const std::string& channel, const void* member_key) {
  std::shared_ptr<connection_io> io;
  std::vector<removal> again;
  {
    std::lock_guard lock(mutex_);
    auto members = channels_.find(channel);
    auto kept = removals_.find(channel);
    if (members == channels_.end() || kept == removals_.end()) return;
    for (const auto& m : members->second) {
      if (m.key == member_key) io = m.io.lock();
    }
    if (!io) return;
    const auto oldest = std::chrono::steady_clock::now() - removal_kept_for;
    removals_count_ -= std::erase_if(kept->second, [&](const removal& r) { return r.at < oldest; });
    again.assign(kept->second.begin(), kept->second.end());
    if (kept->second.empty()) removals_.erase(kept);
  }
  auto send = [](const std::shared_ptr<connection_io>& to, protocol::presence_update_request& presence,
                 const std::string& src) {
    auto frame = std::make_shared<const std::string>(protocol::encode_presence(presence, src));
    auto shown = make_shown_presence(frame, presence, src, {});
    post_to(to, frame, std::move(shown));
  };
  for (auto& r : again) {
    if (options_.move && r.presence.collection && r.presence.doc_id && r.presence.version) {
      store::doc_key key{*r.presence.collection, *r.presence.doc_id};
      const auto version = *r.presence.version;
      options_.move(key, version, {}, std::nullopt, [io, send, r = std::move(r)](doc::presence_result moved) mutable {
        if (!moved.error) r.presence.version = moved.version;
        send(io, r.presence, r.shown_src);
      });
    } else {
      send(io, r.presence, r.shown_src);
    }
  }
}

void presence_hub::report_remote_count_locked() {
  if (options_.observer) options_.observer->on_presence_remote(remote_count_);
}

std::size_t presence_hub::channels() const {
  std::lock_guard lock(mutex_);
  return channels_.size();
}

std::size_t presence_hub::remote_presences() const {
  std::lock_guard lock(mutex_);
  return remote_count_;
}

}  // namespace otsync::server
