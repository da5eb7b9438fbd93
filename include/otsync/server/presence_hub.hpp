// Presence channels of one server: which connections subscribe to each
// (`ps`), and the fan-out of a presence frame to them. Presence is ephemeral:
// nothing here is stored, and a channel with no members is forgotten.
//
// With a presence bus (instances sharing a Redis store), every frame published
// here also goes to the other instances, and theirs come to the members here.
// The hub remembers the latest presence each other instance shows on a channel
// with members here, so that when the bus reports the instance lost, or the
// subscription had to be renewed, it sends `p: null` for each: no ghost
// cursors. Then it asks everyone on the channel to show theirs again (`pr`).
//
// Thread safety: every member function may be called from any thread; frames
// reach each member on its own executor (connection_io::post).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "otsync/doc/types.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/message.hpp"
#include "otsync/pubsub/presence_bus.hpp"
#include "otsync/store/store.hpp"

namespace otsync::server {

class connection_io;

/// Counts for metrics; called from any thread.
class presence_observer {
 public:
  virtual ~presence_observer() = default;
  virtual void on_presence_delivered(std::size_t frames) = 0;
  virtual void on_presence_channels(std::size_t channels) = 0;
  /// Presences other instances show here, tracked to clear them when their instance is lost.
  virtual void on_presence_remote(std::size_t presences) { (void)presences; }
};

/// A doc presence frame as shown to a channel's members, with what a member needs to show it again
/// at a later version: a sharedb client that gets a presence older than its document (its own op
/// was committed after it) can lose it for good, so its connection gives it again, moved
/// (agent::show_presence).
struct shown_presence {
  doc::shared_frame frame;
  protocol::presence_update_request presence;  ///< as the frame shows it (version, value, pv)
  std::string shown_src;                       ///< `src` in the frame (the owner's alias)
  std::string origin_src;                      ///< the owner's real id: its own ops push its caret (empty: none)
};

/// A record of `frame` for a doc presence at a version (collection, doc and version known); else null.
std::shared_ptr<const shown_presence> make_shown_presence(doc::shared_frame frame,
                                                          const protocol::presence_update_request& presence,
                                                          std::string shown_src, std::string origin_src);

/// Applies a move to the head (document_service::transform_presence) to `presence`, which held
/// `range` before: its new version, and its value cleared (a create or delete since) or its range moved.
void apply_presence_move(protocol::presence_update_request& presence, const std::optional<ot::selection>& range,
                         const doc::presence_result& moved);

class presence_hub {
 public:
  /// Moves a doc presence through the ops this instance has applied since its version, to this
  /// instance's head (document_service::transform_presence): another instance's presence arrives at
  /// that instance's head, which can be behind or ahead of this one's. `range` nullopt: only the
  /// version moves (a `p: null`: a receiver takes a presence behind its copy for stale and asks for
  /// a resend that nobody answers).
  using presence_mover = std::function<void(const store::doc_key& key, std::uint64_t version, std::string src,
                                            std::optional<ot::selection> range, doc::presence_handler done)>;

  enum class frame_kind : char {
    update = 'p',  ///< `p`
    resend = 'r',  ///< `pr`
  };

  struct options {
    presence_observer* observer = nullptr;
    pubsub::presence_bus* bus = nullptr;  ///< null: a single instance
    presence_mover move;
    /// Presences of other instances tracked at most; past it they are shown but not cleared
    /// when their instance is lost (--max-remote-presences).
    std::size_t max_remote_presences = 100000;
    /// Channels with members on this server at most (each is a Redis subscription with a bus):
    /// --max-server-presence-channels.
    std::size_t max_channels = 100000;
    /// Runs a function after a delay (on any thread); empty: removals are not sent again by themselves.
    std::function<void(std::chrono::milliseconds, std::function<void()>)> post_after;
  };

  enum class join_result { joined, already, full };

  presence_hub() : presence_hub(options{}) {}
  explicit presence_hub(options opts) : options_(std::move(opts)) {}
  explicit presence_hub(presence_observer* observer)
      : presence_hub(options{observer, nullptr, {}, 100000, 100000, {}}) {}

  /// Starts the bus (when there is one) with this hub's handlers.
  void start();

  /// Adds `member` (any stable address: its agent) to `channel`; `full` when that would make one
  /// channel more than `max_channels`.
  join_result join(const std::string& channel, const void* member, std::weak_ptr<connection_io> io);
  void leave(const std::string& channel, const void* member);
  /// Sends `frame` as a broadcast to every member of `channel` but `except`
  /// (null: all), and to the other instances. `origin_src`: the sender's real id (not the alias the
  /// frame shows), which the other instances need to move a doc presence through its own ops.
  /// Returns how many members here it went to.
  std::size_t publish(const std::string& channel, const doc::shared_frame& frame, const void* except,
                      frame_kind kind = frame_kind::update, std::string_view origin_src = {},
                      std::shared_ptr<const shown_presence> shown = nullptr);
  [[nodiscard]] std::size_t channels() const;

  /// A presence removal (`p: null`) shown on `channel`, kept a while (a few per channel): a sharedb
  /// client that takes it for stale (its document moved on before it handled it) asks for a resend
  /// (`pr`), which nobody who left answers; `resend_removals` then gives it again at the head.
  void note_removal(const std::string& channel, protocol::presence_update_request removal, std::string shown_src);
  /// The presence `id` of `shown_src` shows again: an older removal of it must not be given again.
  void forget_removal(const std::string& channel, const std::string& shown_src, const std::string& id);
  /// Sends `member` the removals kept for `channel`, moved to the head (its `pr`).
  void resend_removals(const std::string& channel, const void* member);
  /// Sends every member the removal of `shown_src`'s presence `id` again, at the head, if it is still
  /// kept (not shown again since). Each removal goes again 1, 3, 7, 15 and 30 s after: a client that
  /// types without a pause takes it for stale, and asks (`pr`) only once.
  void repeat_removal(const std::string& channel, const std::string& shown_src, const std::string& id);
  [[nodiscard]] std::size_t remote_presences() const;

  // The bus's handlers (public for tests that drive a hub without Redis).
  void on_remote_message(std::string_view channel, std::string_view instance, std::string_view payload);
  void on_subscribed(std::string_view channel, bool reconnected);
  void on_instance_lost(std::string_view instance);
  void on_instance_back(std::string_view instance);

 private:
  struct member {
    const void* key;
    std::weak_ptr<connection_io> io;
  };
  /// (instance, src, presence id)
  using remote_key = std::tuple<std::string, std::string, std::string>;
  using remote_presences_map = std::map<remote_key, protocol::presence_update_request>;

  /// Shows another instance's presence here (moved to this instance's head) and tracks it, unless its
  /// instance was lost or its channel cleared since it arrived (`epoch`).
  void show_remote(const std::string& channel, remote_key key, protocol::presence_update_request presence,
                   std::uint64_t epoch, doc::shared_frame frame, std::string origin_src);
  [[nodiscard]] std::uint64_t epoch_locked(const std::string& channel, const std::string& instance) const;
  /// `shown`: the frame's record, for doc presences (members may give it again, moved).
  std::size_t deliver_locally(const std::string& channel, const doc::shared_frame& frame, const void* except,
                              std::shared_ptr<const shown_presence> shown = nullptr);
  /// Shows `presence` (a `p` frame made here) to the members but `except`.
  void deliver_presence(const std::string& channel, const protocol::presence_update_request& presence,
                        const std::string& shown_src, const void* except);
  /// `p: null` to the members here for each of `gone` (taken out of the tracking already).
  void clear_remote(const std::string& channel,
                    std::vector<std::pair<std::string, protocol::presence_update_request>> gone);
  void ask_to_resend(const std::string& channel, bool here_too);
  void report_remote_count_locked();

  struct removal {
    protocol::presence_update_request presence;
    std::string shown_src;
    std::chrono::steady_clock::time_point at;
  };
  void note_removal_locked(const std::string& channel, protocol::presence_update_request removal,
                           std::string shown_src);

  options options_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::deque<removal>> removals_;  ///< per channel with members
  std::size_t removals_count_ = 0;
  std::unordered_map<std::string, std::vector<member>> channels_;
  std::unordered_map<std::string, remote_presences_map> remote_;
  std::size_t remote_count_ = 0;
  /// Bumped (from `epoch_counter_`) when an instance is lost or a channel's remote presences are
  /// cleared: updates still being moved from before are then not shown.
  std::unordered_map<std::string, std::uint64_t> instance_epochs_;
  std::unordered_map<std::string, std::uint64_t> channel_epochs_;
  std::uint64_t epoch_counter_ = 0;
};

}  // namespace otsync::server
