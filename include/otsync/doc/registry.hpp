// The open documents: one actor per document key, created on first use,
// evicted after it has been idle (no subscribers, nothing queued or in
// flight) for a while, and loaded again from the store on demand.
//
// It is the document service (see service.hpp): reads and writes of the head
// go to the actor for the key, reads of the past to the store.
//
// Thread safety: every member function may be called from any thread; the
// map is guarded by a mutex that is never held across I/O or a callback.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "otsync/doc/service.hpp"
#include "otsync/doc/types.hpp"
#include "otsync/pubsub/op_feed.hpp"
#include "otsync/store/store.hpp"

namespace otsync::doc {

class document;

class registry final : public document_service {
 public:
  registry(boost::asio::any_io_executor executor, store::store& storage, document_options options,
           document_observer* observer = nullptr, pubsub::op_feed* feed = nullptr);
  ~registry() override;
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  /// Where new documents live: on the one of these contexts that runs the calling thread (the
  /// first opener's, so its own hand-offs stay on one thread), else on each in turn. Each context
  /// must be run by one thread alone: a document on it has no strand. Empty (the default): each
  /// document on a strand of the constructor's executor. Set before the first document opens.
  void place_on(std::vector<boost::asio::io_context::executor_type> contexts);

  /// The actor for `key`, created (unloaded) when not open.
  std::shared_ptr<document> get(const store::doc_key& key);

  // document_service (src/doc/service.cpp).
  void fetch(const store::doc_key& key, std::optional<std::uint64_t> from, read_handler done,
             std::chrono::steady_clock::time_point asked) override;
  [[nodiscard]] subscription_handle subscribe(const store::doc_key& key, std::shared_ptr<subscriber> who,
                                              std::optional<std::uint64_t> from, read_handler done,
                                              std::chrono::steady_clock::time_point asked) override;
  void unsubscribe(const subscription_handle& handle, const subscriber* who, std::function<void()> done) override;
  void submit(const store::doc_key& key, oplog::submission op, submit_handler done) override;
  void transform_presence(const store::doc_key& key, std::uint64_t version, std::string src,
                          std::optional<ot::selection> range, presence_handler done) override;
  void snapshot_at(const store::doc_key& key, std::uint64_t version, result_handler<oplog::snapshot> done) override;
  void snapshot_at_time(const store::doc_key& key, std::int64_t timestamp_ms,
                        result_handler<oplog::snapshot> done) override;
  void ops(const store::doc_key& key, std::uint64_t from, std::optional<std::uint64_t> to,
           result_handler<std::vector<oplog::op_record>> done) override;
  void list_documents(const std::string& collection, const std::string& after_id, std::size_t limit,
                      result_handler<std::vector<store::document_summary>> done) override;

  /// Starts the periodic sweep that evicts documents idle for `idle_after`.
  void start_eviction(std::chrono::milliseconds idle_after, std::chrono::milliseconds period);
  /// Stops the sweep (for shutdown).
  void stop_eviction();

  [[nodiscard]] std::size_t open_documents() const;
  /// Text and cached ops of the open documents (see document_options::max_open_document_bytes).
  [[nodiscard]] std::uint64_t resident_bytes() const noexcept {
    auto n = resident_bytes_->load(std::memory_order_relaxed);
    return n > 0 ? static_cast<std::uint64_t>(n) : 0;
  }
  [[nodiscard]] bool over_budget() const noexcept { return resident_bytes() > options_.max_open_document_bytes; }
  /// Over budget: evicts every idle document (no subscribers, nothing queued) now, not
  /// after --idle-eviction-ms. At most once per 100 ms.
  void relieve_memory();
  using resident_counter = std::shared_ptr<std::atomic<std::int64_t>>;
  /// The count behind resident_bytes(). Documents hold it: one freed after the registry (a handler
  /// destroyed with the io_context at shutdown) still gives its bytes back to something alive.
  [[nodiscard]] const resident_counter& resident() const noexcept { return resident_bytes_; }
  /// True when no open document has work queued or in flight.
  [[nodiscard]] bool quiescent() const;

  [[nodiscard]] const document_options& options() const noexcept { return options_; }
  [[nodiscard]] document_observer* observer() const noexcept { return observer_; }
  /// Ops committed by other instances (null for a single instance).
  [[nodiscard]] pubsub::op_feed* feed() const noexcept { return feed_; }

 private:
  friend class document;
  /// The store, for the documents (the edges read through the service).
  [[nodiscard]] store::store& storage() noexcept { return storage_; }
  /// Called by a document on its executor once it decided to go: removes it if
  /// the map still holds this instance.
  void forget(const document* doc);
  void sweep();
  [[nodiscard]] boost::asio::any_io_executor home_for_new_document();

  boost::asio::any_io_executor executor_;
  std::vector<boost::asio::io_context::executor_type> homes_;
  std::atomic<std::size_t> next_home_{0};
  store::store& storage_;
  document_options options_;
  document_observer* observer_;
  pubsub::op_feed* feed_;

  mutable std::mutex mutex_;
  std::map<store::doc_key, std::shared_ptr<document>> documents_;

  boost::asio::steady_timer sweep_timer_;
  std::chrono::milliseconds idle_after_{60000};
  std::chrono::milliseconds sweep_period_{10000};
  std::atomic<bool> sweeping_{false};
  resident_counter resident_bytes_ = std::make_shared<std::atomic<std::int64_t>>(0);
  std::atomic<std::int64_t> last_relief_{0};  // steady_clock ticks
};

}  // namespace otsync::doc
