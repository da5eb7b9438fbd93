// Presence channels of one server: which connections subscribe to each
// (`ps`), and the fan-out of a presence frame to them. Presence is ephemeral:
// nothing here is stored, and a channel with no members is forgotten.
//
// Thread safety: every member function may be called from any thread; frames
// reach each member on its own strand (connection_io::post).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "otsync/doc/types.hpp"

namespace otsync::server {

class connection_io;

/// Counts for metrics; called from any thread.
class presence_observer {
 public:
  virtual ~presence_observer() = default;
  virtual void on_presence_delivered(std::size_t frames) = 0;
  virtual void on_presence_channels(std::size_t channels) = 0;
};

class presence_hub {
 public:
  explicit presence_hub(presence_observer* observer = nullptr) : observer_(observer) {}

  /// Adds `member` (any stable address: its agent) to `channel`; false when it was there.
  bool join(const std::string& channel, const void* member, std::weak_ptr<connection_io> io);
  void leave(const std::string& channel, const void* member);
  /// Sends `frame` as a broadcast to every member of `channel` but `except`
  /// (null: all). Returns how many it went to.
  std::size_t publish(const std::string& channel, const doc::shared_frame& frame, const void* except);
  [[nodiscard]] std::size_t channels() const;

 private:
  struct member {
    const void* key;
    std::weak_ptr<connection_io> io;
  };
  presence_observer* observer_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::vector<member>> channels_;
};

}  // namespace otsync::server
