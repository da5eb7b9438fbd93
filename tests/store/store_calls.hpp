// Blocking wrappers over the asynchronous store calls, and a helper that
// builds a document's history the way the server will: each op's `after`
// snapshot computed with oplog::replay.
#pragma once

#include <future>
#include <optional>
#include <string>
#include <vector>

#include "otsync/oplog/snapshot.hpp"
#include "otsync/store/store.hpp"

namespace otsync::store::test {

inline constexpr const char* text_type = "http://sharejs.org/types/text-unicode";

template <class T>
class waiter {
 public:
  handler<T> callback() {
    return [this](ot::result<T> result) { promise_.set_value(std::move(result)); };
  }
  ot::result<T> get() { return promise_.get_future().get(); }

 private:
  std::promise<ot::result<T>> promise_;
};

inline ot::result<loaded_document> load(store& s, const doc_key& key,
                                        std::optional<std::uint64_t> version = std::nullopt) {
  waiter<loaded_document> w;
  s.load(key, version, w.callback());
  return w.get();
}

inline ot::result<std::vector<oplog::op_record>> load_ops(store& s, const doc_key& key, std::uint64_t from,
                                                          std::optional<std::uint64_t> to = std::nullopt) {
  waiter<std::vector<oplog::op_record>> w;
  s.load_ops(key, from, to, w.callback());
  return w.get();
}

inline ot::result<std::uint64_t> version_at(store& s, const doc_key& key, std::int64_t timestamp_ms) {
  waiter<std::uint64_t> w;
  s.version_at(key, timestamp_ms, w.callback());
  return w.get();
}

inline ot::result<std::vector<document_summary>> list_documents(store& s, const std::string& collection,
                                                                const std::string& after_id = "",
                                                                std::size_t limit = 1000) {
  waiter<std::vector<document_summary>> w;
  s.list_documents(collection, after_id, limit, w.callback());
  return w.get();
}

inline std::error_code commit(store& s, commit_request request) {
  std::promise<std::error_code> done;
  s.commit(std::move(request), [&done](std::error_code error) { done.set_value(error); });
  return done.get_future().get();
}

/// One document's history as committed so far, and the next commit.
inline std::error_code commit_all(store& s, std::vector<commit_request> requests) {
  std::promise<std::error_code> done;
  s.commit_all(std::move(requests), [&done](std::error_code error) { done.set_value(error); });
  return done.get_future().get();
}

struct doc_history {
  explicit doc_history(doc_key k, oplog::snapshot at_head = {}) : key(std::move(k)), head(std::move(at_head)) {}

  doc_key key;
  oplog::snapshot head;
  std::vector<oplog::op_record> log;
  std::uint64_t next_seq = 1;

  /// The request that appends `body` at the head (nothing is committed).
  commit_request next(oplog::op_body body, bool store_snapshot = false, std::int64_t timestamp_ms = 0,
                      std::string src = "src-a") {
    oplog::op_record record{std::move(src), next_seq, head.version, std::move(body), timestamp_ms};
    auto after = oplog::replay(head, std::span(&record, 1));
    EXPECT_TRUE(after) << after.error().message();
    return {key, std::move(record), after ? *after : head, store_snapshot};
  }

  /// Records a request as committed.
  void accept(const commit_request& request) {
    head = request.after;
    log.push_back(request.op);
    ++next_seq;
  }

  /// Commits `body` at the head and records it on success.
  std::error_code append(store& s, oplog::op_body body, bool store_snapshot = false, std::int64_t timestamp_ms = 0) {
    commit_request request = next(std::move(body), store_snapshot, timestamp_ms);
    const std::error_code error = commit(s, request);
    if (!error) accept(request);
    return error;
  }

  /// The document at `version` (at most the head), replayed from nothing.
  [[nodiscard]] oplog::snapshot at(std::uint64_t version) const {
    auto result = oplog::replay({}, std::span(log).first(version));
    EXPECT_TRUE(result);
    return result ? *result : oplog::snapshot{};
  }
};

}  // namespace otsync::store::test
