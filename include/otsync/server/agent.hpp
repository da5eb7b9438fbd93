// One client connection's side of the ShareDB protocol, without sockets:
// frames in (`on_frame`), frames out (through `connection_io`), requests to
// the document service in between. The WebSocket session drives it; the unit
// tests drive it directly.
//
// Thread safety: every member function runs on the connection's executor (the
// `connection_io::post` executor). Document replies are posted back to it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "otsync/auth/access.hpp"
#include "otsync/auth/identity.hpp"
#include "otsync/doc/service.hpp"
#include "otsync/protocol/message.hpp"

namespace otsync::server {

struct shown_presence;

/// Takes broadcasts on a connection's executor (an agent's subscription to one document).
class broadcast_receiver {
 public:
  virtual ~broadcast_receiver() = default;
  virtual void receive(const doc::shared_broadcast& op) = 0;
};

/// What an agent needs from its connection.
class connection_io {
 public:
  virtual ~connection_io() = default;
  /// Queues one text frame (in order): a reply to this client's request.
  virtual void send(doc::shared_frame frame) = 0;
  /// Queues a broadcast (another client's op). Only broadcasts count against
  /// the queue's frame limit: a client catching up on many ops after a long
  /// absence is not taken for one that stopped reading.
  virtual void send_broadcast(doc::shared_frame frame) { send(std::move(frame)); }
  /// Shows another client's doc presence (presence_hub): by default sends its frame as a broadcast;
  /// a connection with an agent lets it record it (agent::show_presence).
  virtual void show_presence(std::shared_ptr<const shown_presence> shown);
  /// Sends the queued frames, then closes with a WebSocket close code.
  virtual void close(std::uint16_t code, std::string reason) = 0;
  /// Runs `fn` on the connection's executor, if the connection is still alive.
  virtual void post(std::function<void()> fn) = 0;
  /// Calls `to->receive(op)` on the connection's executor: a broadcast's hand-off, once per op and
  /// subscriber (a connection may do it without the allocation a std::function costs).
  virtual void post_broadcast(std::shared_ptr<broadcast_receiver> to, doc::shared_broadcast op) {
    post([to = std::move(to), op = std::move(op)] { to->receive(op); });
  }
  /// Runs `fn` on the connection's executor after `delay`, if the connection is still alive then.
  virtual void post_after(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
  /// The agent has room for more requests again (see `agent::can_read`).
  virtual void resume_reading() = 0;
};

/// Counts for metrics and logs; called on the connection's executor.
class agent_observer {
 public:
  virtual ~agent_observer() = default;
  virtual void on_error_reply(std::string_view code) = 0;
  /// A handshake named an id this server did not mint: not adopted.
  virtual void on_handshake_id_refused() {}
  /// A presence update (`p`) arrived.
  virtual void on_presence_received() {}
  /// A presence update was never broadcast: a newer one of the same presence replaced it (--max-presence-rate).
  virtual void on_presence_coalesced() {}
  /// A presence was shown to a connection that keeps --max-kept-presences already: sent, not kept.
  virtual void on_presence_unkept() {}
};

class presence_hub;

struct agent_options {
  std::size_t max_pending_requests = 128;  ///< requests awaiting a reply before reading pauses
  protocol::message_limits message;        ///< what one message may hold
  std::size_t max_subscriptions = 5000;    ///< documents subscribed at once: ERR_SUBSCRIPTION_LIMIT_EXCEEDED
  double request_rate = 5000;              ///< messages per second, sustained (0: no limit): ERR_RATE_LIMITED
  double request_burst = 10000;            ///< ... and in a burst
  double create_rate = 10;                 ///< documents created per second (0: no limit): ERR_CREATE_RATE_LIMITED
  double create_burst = 100;               ///< ... and in a burst
  /// Tells the ids this server minted from made-up ones, and gives the alias
  /// other clients see for an op's author. Null: no hs id is adopted and
  /// every src is shown as it is (unit tests).
  const auth::identity_keys* identity = nullptr;
  /// What this connection may read and write (its token's grant); null: everything (--auth none).
  const auth::access_rules* access = nullptr;
  /// Recorded with every op this connection commits: its token's subject.
  std::string author;
  /// Presence channels (`ps`, `pu`, `p`, `pr`); null: presence is refused with ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE.
  presence_hub* presence = nullptr;
  std::size_t max_presence_bytes = 4096;  ///< one presence value, as JSON: ERR_PRESENCE_TOO_LARGE
  std::size_t max_presences = 100;        ///< presence ids with a value at once: ERR_PRESENCE_LIMIT_EXCEEDED
  /// Others' presences kept to be sent again, moved to the head, after this connection's acks
  /// (show_presence); past it, a new one is only sent (--max-kept-presences).
  std::size_t max_kept_presences = 4096;
  std::size_t max_presence_channels = 1000;  ///< presence channels subscribed at once: ERR_PRESENCE_LIMIT_EXCEEDED
  /// The hub's limit on channels in all (for the error's text): --max-server-presence-channels.
  std::size_t max_server_presence_channels = 100000;
  /// Presence broadcasts per second (bursts of twice that); past it each update is acked at once
  /// and the latest of each presence goes out when the rate allows (0: no limit).
  double presence_rate = 20;
  /// A doc presence ahead of the ops this connection was given waits for them at most this long
  /// (agent::show_presence), then goes as it is.
  std::chrono::milliseconds presence_ops_wait{500};
};

/// The close code of a connection whose bearer token expired (docs/security.md).
inline constexpr std::uint16_t token_expired_close_code = 4001;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
class token_bucket {
 public:
  token_bucket(double rate, double burst) noexcept : rate_(rate), burst_(burst), tokens_(burst) {}
  /// Takes a token if there is one; always true when the rate is 0 (no limit).
  bool try_take(std::chrono::steady_clock::time_point now) noexcept;

 private:
  double rate_;
  double burst_;
  double tokens_;
  std::chrono::steady_clock::time_point last_{};
};

class agent {
 public:
  agent(doc::document_service& documents, std::weak_ptr<connection_io> io, std::string connection_id,
        agent_options options = {}, agent_observer* observer = nullptr);
  ~agent();
  agent(const agent&) = delete;
  agent& operator=(const agent&) = delete;

  /// Handles one text frame from the client.
  void on_frame(std::string_view frame);
  /// The connection closed: drop every subscription.
  void on_closed();
  /// Another client's doc presence for a channel this connection is on (presence_hub). Sent at
  /// once, or first moved to the head when it is older than an op this connection was already
  /// given (or acked); then kept (the latest per presence) and given again, moved, after each
  /// ack of an op on its document that it is not past. The sharedb client takes a presence older
  /// than its document for stale, and its catch-up cannot cross its own ops: without this, a
  /// cursor received while its own op was in flight can stay where it was for good.
  void show_presence(std::shared_ptr<const shown_presence> shown);
  /// The connection's token expired: requests in flight are answered, later
  /// ones are not handled, and the connection closes with
  /// `token_expired_close_code` once nothing is in flight.
  void expire();

  /// False while too many requests await replies: stop reading until `resume_reading`.
  [[nodiscard]] bool can_read() const noexcept { return pending_ < options_.max_pending_requests; }
  /// The id ops from this connection carry (a minted `hs.id` once adopted).
  [[nodiscard]] const std::string& src() const noexcept { return src_; }
  /// What others see for `src()` (logs use it too: the id itself is its owner's secret).
  [[nodiscard]] const std::string& src_alias() const noexcept { return src_alias_.empty() ? src_ : src_alias_; }
  /// Subscriptions of one document at once: the one delivering and the newer ones still being read.
  /// Past it a subscribe is refused (each would take every op of the document once more).
  static constexpr std::size_t max_live_subscriptions_per_document = 4;
  [[nodiscard]] std::size_t subscriptions() const noexcept { return subscriptions_.size(); }
  [[nodiscard]] std::size_t presence_channels() const noexcept { return presence_channels_.size(); }

 private:
  class subscription;

  void handle(protocol::request& req);
  void handle_doc(const std::string& action, nlohmann::json echo, protocol::doc_request r);
  void handle_bulk(const std::string& action, nlohmann::json echo, protocol::bulk_request r);
  struct bulk;
  void read_next(const std::shared_ptr<bulk>& b);
  void on_bulk_answer(const std::shared_ptr<bulk>& b, std::size_t i, doc::read_result result);
  void send_bulk_page(bulk& b);
  void finish_bulk(bulk& b);
  void handle_submit(nlohmann::json echo, protocol::submit_request r);
  void handle_snapshot(nlohmann::json echo, protocol::snapshot_request r);
  void reply_snapshot_at(nlohmann::json echo, const store::doc_key& key, std::optional<std::uint64_t> version);
  void send_snapshot(nlohmann::json& echo, const oplog::snapshot& snap);
  void handle_presence_subscribe(nlohmann::json echo, protocol::presence_subscribe_request r);
  void handle_presence_resend(protocol::presence_resend_request r);
  void handle_presence(nlohmann::json echo, protocol::presence_update_request r);
  /// Moves a doc presence to the head, then publishes it (and echoes it when `echo_to_sender`).
  void forward_presence(nlohmann::json echo, protocol::presence_update_request r, bool echo_to_sender);
  /// Publishes held presences (the latest of each) as the rate allows; the rest wait for the next flush.
  void flush_held_presences();
  void schedule_presence_flush();
  /// Records `presence` as this connection's latest on its channel, sends it to the other members and echoes it.
  void publish_presence(protocol::presence_update_request presence, bool echo_to_sender = true);
  /// `p: null` to the channel's members for every presence this connection left on `channel`.
  void clear_presences(const std::string& channel);
  /// With access rules: whether `channel` is a document this connection may read ("collection.id").
  [[nodiscard]] bool may_use_channel(const std::string& channel) const;
  /// Whether `wanted` more documents (not yet subscribed) fit under the subscription limit.
  [[nodiscard]] bool may_subscribe(std::size_t wanted) const noexcept;

  [[nodiscard]] bool may_read(const std::string& collection, const std::string& id) const noexcept {
    return options_.access == nullptr || options_.access->may_read(collection, id);
  }
  [[nodiscard]] bool may_write(const std::string& collection, const std::string& id) const noexcept {
    return options_.access == nullptr || options_.access->may_write(collection, id);
  }
  /// After the ack of this connection's op at `acked` on `key`: gives again every presence kept for
  /// its channel that is not past that op.
  void show_presences_again(const store::doc_key& key, std::uint64_t acked);
  /// Moves `shown` to the head and sends it, unless a newer one of that presence was kept meanwhile.
  /// `first`: not sent before (it would have arrived stale).
  void show_moved(std::shared_ptr<const shown_presence> shown, bool first);
  /// Holds a shown presence (its entry marked `awaiting_ops`) until the ops before its version
  /// are given here, for at most presence_ops_wait.
  void hold_presence(store::doc_key key, const std::string& channel, const std::pair<std::string, std::string>& who,
                     std::shared_ptr<const shown_presence> shown);
  /// Sends the held presences of document `only` (every document: null) that the ops given here
  /// have caught up with, and those held since before `expired`.
  void release_awaiting(const store::doc_key* only, std::chrono::steady_clock::time_point expired);
  void arm_awaiting_timer(std::chrono::steady_clock::duration delay);
  void forget_shown(const std::string& channel);
  /// A `pr` from this client: every presence kept for `channel` again, at the head.
  void show_kept_again(const std::string& channel);
  void send(std::string frame);
  /// Sends op frames the document shares with every subscriber; the ones
  /// this connection wrote go with its real id in place of the alias (the
  /// sharedb client spots its own op in flight by src and seq).
  void send_ops(std::vector<doc::shared_frame>& frames);
  /// Adopts `src` as this connection's id.
  void set_src(std::string src);
  void send_error(nlohmann::json echo, const protocol::error_info& error);
  /// A new subscription to `key`, the newest of its document's. The ones already there keep
  /// delivering until it is read (settle_subscription).
  std::shared_ptr<subscription> subscribe_slot(const store::doc_key& key);
  /// The read of `sub` (made by subscribe_slot) answered: when it was read, `sub` takes over and
  /// the older ones go (newer ones are still being read); when not, only `sub` goes. Nothing when
  /// `sub` went already.
  void settle_subscription(const store::doc_key& key, const std::shared_ptr<subscription>& sub, bool read);
  [[nodiscard]] std::size_t live_subscriptions(const store::doc_key& key) const;
  /// The version the client has of `key` from its subscriptions (0 without one).
  [[nodiscard]] std::uint64_t client_version_of(const store::doc_key& key) const;
  void unsubscribe(const store::doc_key& key);
  /// Stops `sub`'s deliveries and takes it off its document.
  void release(const std::shared_ptr<subscription>& sub);
  void release_all(const std::vector<std::shared_ptr<subscription>>& live);
  /// Runs `fn` on this connection's executor once the caller's work is done;
  /// keeps the pending count for backpressure.
  template <class Fn>
  auto on_strand(Fn fn);
  void begin_request() { ++pending_; }
  void close_if_expired();
  void end_request();

  doc::document_service& documents_;
  std::weak_ptr<connection_io> io_;
  std::string src_;
  std::string src_alias_;  ///< what others see for src_ (empty without identity keys)
  agent_options options_;
  agent_observer* observer_;
  std::size_t pending_ = 0;
  bool closed_ = false;
  bool expired_ = false;
  token_bucket requests_;
  token_bucket creates_;
  /// Each subscribed document's live subscriptions, oldest first. A subscription read takes over
  /// from the older ones (settle_subscription), so only the oldest may be delivering to a client
  /// told it is subscribed; the newer ones wait for their read (or their map-form request).
  std::map<store::doc_key, std::vector<std::shared_ptr<subscription>>> subscriptions_;
  std::map<std::string, std::uint64_t> presence_channels_;  ///< subscribed (`ps`), with the last seq
  /// The latest presence this connection sent under each id, per channel (for `p: null` when it leaves).
  std::map<std::string, std::map<std::string, protocol::presence_update_request>> presences_;
  std::size_t presence_count_ = 0;
  token_bucket presence_broadcasts_;
  token_bucket presence_resends_;  ///< `pr` fan-outs (each makes every member send again)
  /// Per channel with doc presences being moved to the head: `epoch` grows when the connection
  /// leaves the channel (`pu`), so a move that finishes afterwards is not shown.
  struct presence_flight {
    std::uint64_t epoch = 0;
    std::size_t in_flight = 0;
  };
  std::map<std::string, presence_flight> presence_flights_;
  std::size_t presence_in_flight_ = 0;
  /// Updates past --max-presence-rate, acked and waiting: the latest per (channel, id).
  std::map<std::pair<std::string, std::string>, std::pair<nlohmann::json, protocol::presence_update_request>> held_;
  bool flush_scheduled_ = false;
  /// Other clients' doc presences shown here, the latest per (shown src, id), per channel
  /// (show_presence); at most `max_kept_presences` in all, past it they are only sent.
  struct shown_entry {
    std::shared_ptr<const shown_presence> shown;
    bool given_again = false;   ///< a removal goes again once
    bool awaiting_ops = false;  ///< not sent yet: ahead of the ops given this connection
  };
  std::map<std::string, std::map<std::pair<std::string, std::string>, shown_entry>> shown_presences_;
  std::size_t shown_count_ = 0;
  /// Shown presences waiting for ops on their way here, per document (the ops are handed over by
  /// the document's thread, the presence by its sender's: either may come first). At most one per
  /// kept presence: a newer one of the same presence takes its place, and its deadline.
  struct awaiting_presence {
    std::string channel;
    std::pair<std::string, std::string> who;
    std::shared_ptr<const shown_presence> shown;
    std::chrono::steady_clock::time_point until;
  };
  std::map<store::doc_key, std::vector<awaiting_presence>> awaiting_;
  bool awaiting_timer_ = false;
  /// Channels where others may show what this connection was not shown (its join's `pr` was past
  /// the rate, or it kept no more): a `pr` from it goes to every member there.
  std::set<std::string> shown_incomplete_;

 public:
};

}  // namespace otsync::server
