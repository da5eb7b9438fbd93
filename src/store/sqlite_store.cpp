#include "otsync/store/sqlite_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "op_body_json.hpp"
#include "request_checks.hpp"
#include "sqlite/connection.hpp"
#include "sqlite/reader.hpp"
#include "sqlite/schema.hpp"
#include "sqlite/writer.hpp"

namespace otsync::store {
namespace {

/// Runs a handler on a store thread: an exception from it must not end the
/// thread (and with it every later request), so it is dropped here.
template <class Handler, class Value>
void call_handler(const Handler& done, Value&& value) noexcept {
  try {
    done(std::forward<Value>(value));
  } catch (...) {  // NOLINT(bugprone-empty-catch): the caller's bug, nothing left to tell
  }
}

/// A read queued for a reader thread; called with nullptr when the store
/// closed before it could run (it then reports `closed`).
using read_job = std::function<void(sqlite::reader*)>;

template <class T, class Query>
read_job make_read_job(handler<T> done, Query query) {
  return [done = std::move(done), query = std::move(query)](sqlite::reader* reader) {
    ot::result<T> result = make_error_code(errc::closed);
    if (reader != nullptr) {
      try {
        result = query(*reader);
      } catch (...) {  // out of memory while decoding: report, don't die
        result = make_error_code(errc::unavailable);
      }
    }
    call_handler(done, std::move(result));
  };
}

struct queued_commit {
  sqlite::encoded_commit work;
  commit_handler done;
};

class sqlite_store_impl final : public sqlite_store {
 public:
  sqlite_store_impl(sqlite::writer writer, std::vector<sqlite::reader> readers, std::size_t max_batch)
      : writer_(std::move(writer)), readers_(std::move(readers)), max_batch_(max_batch) {
    try {
      writer_thread_ = std::thread([this] { write_loop(); });
      for (auto& reader : readers_) reader_threads_.emplace_back([this, &reader] { read_loop(reader); });
      thread_ids_.push_back(writer_thread_.get_id());
      for (const auto& thread : reader_threads_) thread_ids_.push_back(thread.get_id());
    } catch (...) {  // no thread for a reader: stop the ones started
      close();
      throw;
    }
  }

  ~sqlite_store_impl() override { close(); }
  sqlite_store_impl(const sqlite_store_impl&) = delete;
  sqlite_store_impl& operator=(const sqlite_store_impl&) = delete;

  void load(const doc_key& key, std::optional<std::uint64_t> version, handler<loaded_document> done) override {
    if (!detail::valid_key(key)) return done(errc::invalid_argument);
    enqueue_read(make_read_job(std::move(done), [key, version](sqlite::reader& r) { return r.load(key, version); }));
  }

  void load_ops(const doc_key& key, std::uint64_t from, std::optional<std::uint64_t> to,
                handler<std::vector<oplog::op_record>> done) override {
    if (auto error = detail::check_range(key, from, to)) return done(error);
    enqueue_read(
        make_read_job(std::move(done), [key, from, to](sqlite::reader& r) { return r.load_ops(key, from, to); }));
  }

  void version_at(const doc_key& key, std::int64_t timestamp_ms, handler<std::uint64_t> done) override {
    if (!detail::valid_key(key)) return done(errc::invalid_argument);
    enqueue_read(make_read_job(std::move(done),
                               [key, timestamp_ms](sqlite::reader& r) { return r.version_at(key, timestamp_ms); }));
  }

  void list_documents(const std::string& collection, const std::string& after_id, std::size_t limit,
                      handler<std::vector<document_summary>> done) override {
    if (collection.empty()) return done(errc::invalid_argument);
    enqueue_read(make_read_job(std::move(done), [collection, after_id, limit](sqlite::reader& r) {
      return r.list_documents(collection, after_id, limit);
    }));
  }

  void commit(commit_request request, commit_handler done) override {
    if (auto error = detail::check_commit(request)) return done(error);
    // Encoded here, on the caller's thread, so the writer thread only writes.
    auto body = detail::encode_op_body(request.op.body);
    if (!body) return done(body.error());
    {
      std::unique_lock lock(mutex_);
      if (!closing_) {
        commits_.push_back({{std::move(request), std::move(*body)}, std::move(done)});
        lock.unlock();
        writer_wake_.notify_one();
        return;
      }
    }
    done(errc::closed);
  }

  void close() override {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    writer_wake_.notify_all();
    readers_wake_.notify_all();
    // From a handler: the threads finish the queues and end by themselves;
    // joining here would wait for this very thread.
    if (is_store_thread()) return;
    std::lock_guard join_lock(join_mutex_);
    if (writer_thread_.joinable()) writer_thread_.join();
    for (auto& thread : reader_threads_) {
      if (thread.joinable()) thread.join();
    }
  }

  [[nodiscard]] sqlite_store_stats stats() const override {
    return {transactions_.load(std::memory_order_relaxed), commits_taken_.load(std::memory_order_relaxed),
            largest_batch_.load(std::memory_order_relaxed), failed_batches_.load(std::memory_order_relaxed)};
  }

  [[nodiscard]] backend_health health() const override {
    const auto counters = stats();
    return {true,
            "sqlite",
            {{"otsync_store_transactions_total",
              "SQLite write transactions since start (one fsync each; commits are grouped)", health_kind::total,
              counters.transactions},
             {"otsync_store_commits_total", "Ops written by the SQLite store since start", health_kind::total,
              counters.commits},
             {"otsync_store_failed_batches_total", "SQLite write transactions that failed and were rolled back",
              health_kind::total, counters.failed_batches}}};
  }

 private:
  void enqueue_read(read_job job) {
    {
      std::unique_lock lock(mutex_);
      if (!closing_) {
        reads_.push_back(std::move(job));
        lock.unlock();
        readers_wake_.notify_one();
        return;
      }
    }
    job(nullptr);
  }

  [[nodiscard]] bool is_store_thread() const noexcept {
    return std::find(thread_ids_.begin(), thread_ids_.end(), std::this_thread::get_id()) != thread_ids_.end();
  }

  void write_loop() noexcept {
    std::vector<sqlite::encoded_commit> work;
    std::vector<commit_handler> handlers;
    for (;;) {
      work.clear();
      handlers.clear();
      {
        std::unique_lock lock(mutex_);
        writer_wake_.wait(lock, [&] { return !commits_.empty() || closing_; });
        if (commits_.empty()) return;  // closing, and everything queued is done
        // Everything that queued up during the last fsync: the group commit.
        const std::size_t count = std::min(commits_.size(), max_batch_);
        for (std::size_t i = 0; i < count; ++i) {
          work.push_back(std::move(commits_.front().work));
          handlers.push_back(std::move(commits_.front().done));
          commits_.pop_front();
        }
      }
      sqlite::batch_outcome outcome;
      try {
        outcome = writer_.commit_batch(work);
      } catch (...) {  // out of memory mid-batch: nothing stays written, all get unavailable
        writer_.abandon();
        outcome = {};
      }
      if (!outcome.committed) failed_batches_.fetch_add(1, std::memory_order_relaxed);
      transactions_.fetch_add(1, std::memory_order_relaxed);
      commits_taken_.fetch_add(work.size(), std::memory_order_relaxed);
      if (work.size() > largest_batch_.load(std::memory_order_relaxed)) {
        largest_batch_.store(work.size(), std::memory_order_relaxed);  // only this thread writes it
      }
      for (std::size_t i = 0; i < handlers.size(); ++i) {
        call_handler(handlers[i], i < outcome.results.size() ? outcome.results[i] : make_error_code(errc::unavailable));
      }
    }
  }

  void read_loop(sqlite::reader& reader) noexcept {
    for (;;) {
      read_job job;
      {
        std::unique_lock lock(mutex_);
        readers_wake_.wait(lock, [&] { return !reads_.empty() || closing_; });
        if (reads_.empty()) return;
        job = std::move(reads_.front());
        reads_.pop_front();
      }
      job(&reader);  // the job catches its own exceptions
    }
  }

  sqlite::writer writer_;                // used only on writer_thread_
  std::vector<sqlite::reader> readers_;  // readers_[i] used only on reader_threads_[i]
  const std::size_t max_batch_;

  std::mutex mutex_;  // guards the queues and closing_
  std::condition_variable writer_wake_;
  std::condition_variable readers_wake_;
  std::deque<queued_commit> commits_;
  std::deque<read_job> reads_;
  bool closing_ = false;

  std::mutex join_mutex_;  // one closer joins at a time
  std::thread writer_thread_;
  std::vector<std::thread> reader_threads_;
  // The threads' ids, fixed once started: `join` resets a std::thread's id,
  // so a closer running on a store thread must not read those.
  std::vector<std::thread::id> thread_ids_;

  std::atomic<std::uint64_t> transactions_{0};
  std::atomic<std::uint64_t> commits_taken_{0};
  std::atomic<std::uint64_t> largest_batch_{0};
  std::atomic<std::uint64_t> failed_batches_{0};
};

std::string upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return text;
}

/// Opens one connection with the store's settings. The writer's opens the
/// file (creating it) and switches it to WAL, which is persistent, so the
/// readers' find it already there.
ot::result<sqlite::connection> open_connection(const sqlite_options& options, bool writer, std::string* detail) {
  auto db = sqlite::connection::open(options.path, writer, detail);
  if (!db) return open_errc::cannot_open;
  sqlite3_busy_timeout(db->handle(), options.busy_timeout_ms);
  auto fail = [&] {
    if (detail) *detail = db->last_message();
    return open_errc::cannot_open;
  };
  if (writer) {
    std::string mode;
    if (db->query_text("PRAGMA journal_mode = WAL", mode) != SQLITE_OK) return fail();
    if (upper(mode) != "WAL") {
      if (detail) *detail = "cannot switch the database to WAL mode (journal_mode is " + mode + ")";
      return open_errc::cannot_open;
    }
    const std::string synchronous = "PRAGMA synchronous = " + upper(options.synchronous);
    if (db->exec(synchronous.c_str()) != SQLITE_OK) return fail();
    const std::string cache = "PRAGMA cache_size = -" + std::to_string(options.writer_cache_kib);
    if (db->exec(cache.c_str()) != SQLITE_OK) return fail();
    const std::string checkpoint = "PRAGMA wal_autocheckpoint = " + std::to_string(options.wal_checkpoint_pages);
    if (db->exec(checkpoint.c_str()) != SQLITE_OK) return fail();
  } else if (db->exec("PRAGMA query_only = 1") != SQLITE_OK) {
    return fail();
  }
  return db;
}

}  // namespace

ot::result<std::unique_ptr<store>> open_sqlite_store(const sqlite_options& options, std::string* detail) {
  std::string message;
  auto failed = [&](std::error_code error) {
    if (detail) *detail = message.empty() ? options.path : message + ": " + options.path;
    return error;
  };
  const std::string synchronous = upper(options.synchronous);
  if (synchronous != "OFF" && synchronous != "NORMAL" && synchronous != "FULL" && synchronous != "EXTRA") {
    message = "synchronous must be OFF, NORMAL, FULL or EXTRA, not '" + options.synchronous + "'";
    return failed(open_errc::invalid_option);
  }
  if (options.path.empty() || options.max_batch == 0 || options.reader_threads == 0 || options.busy_timeout_ms < 0 ||
      options.writer_cache_kib == 0 || options.wal_checkpoint_pages == 0 ||
      options.writer_cache_kib > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
      options.wal_checkpoint_pages > static_cast<std::uint32_t>(std::numeric_limits<int>::max())) {
    // A checkpoint interval of 0 would turn SQLite's automatic checkpoints off: the log would grow without end.
    // SQLite reads a PRAGMA's number past INT_MAX as 0: refused too.
    message =
        "path must be set, max_batch, reader_threads, writer_cache_kib and wal_checkpoint_pages above 0 (and "
        "within an int), busy_timeout_ms not negative";
    return failed(open_errc::invalid_option);
  }

  auto write_db = open_connection(options, true, &message);
  if (!write_db) return failed(write_db.error());
  if (auto error = sqlite::migrate(*write_db, &message)) return failed(error);
  auto writer = sqlite::writer::prepare(std::move(*write_db), &message);
  if (!writer) return failed(open_errc::cannot_open);

  std::vector<sqlite::reader> readers;
  readers.reserve(options.reader_threads);
  for (std::size_t i = 0; i < options.reader_threads; ++i) {
    auto read_db = open_connection(options, false, &message);
    if (!read_db) return failed(read_db.error());
    auto reader = sqlite::reader::prepare(std::move(*read_db), &message);
    if (!reader) return failed(open_errc::cannot_open);
    readers.push_back(std::move(*reader));
  }
  try {
    return std::unique_ptr<store>(
        std::make_unique<sqlite_store_impl>(std::move(*writer), std::move(readers), options.max_batch));
  } catch (const std::system_error& error) {  // the threads could not be started
    message = error.what();
    return failed(open_errc::cannot_open);
  }
}

}  // namespace otsync::store
