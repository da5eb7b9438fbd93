#include "otsync/server/presence_hub.hpp"

#include <algorithm>

#include "otsync/server/agent.hpp"

namespace otsync::server {

bool presence_hub::join(const std::string& channel, const void* key, std::weak_ptr<connection_io> io) {
  std::size_t count = 0;
  {
    std::lock_guard lock(mutex_);
    auto& members = channels_[channel];
    if (std::any_of(members.begin(), members.end(), [&](const member& m) { return m.key == key; })) return false;
    members.push_back({key, std::move(io)});
    count = channels_.size();
  }
  if (observer_) observer_->on_presence_channels(count);
  return true;
}

void presence_hub::leave(const std::string& channel, const void* key) {
  std::size_t count = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    std::erase_if(it->second, [&](const member& m) { return m.key == key; });
    if (it->second.empty()) channels_.erase(it);
    count = channels_.size();
  }
  if (observer_) observer_->on_presence_channels(count);
}

std::size_t presence_hub::publish(const std::string& channel, const doc::shared_frame& frame, const void* except) {
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
  // Outside the lock: posting runs no handler inline, but takes each connection's strand lock.
  for (auto& io : targets) {
    io->post([weak = std::weak_ptr<connection_io>(io), frame] {
      if (auto alive = weak.lock()) alive->send_broadcast(frame);
    });
  }
  if (observer_ && !targets.empty()) observer_->on_presence_delivered(targets.size());
  return targets.size();
}

std::size_t presence_hub::channels() const {
  std::lock_guard lock(mutex_);
  return channels_.size();
}

}  // namespace otsync::server
