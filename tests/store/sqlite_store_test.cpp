#include "otsync/store/sqlite_store.hpp"

#include <algorithm>
#include <fstream>
#include <limits>
#include <random>

#include "sqlite_test_db.hpp"
#include "store_conformance.hpp"

namespace otsync::store::test {
namespace {

std::unique_ptr<store> open_or_fail(const sqlite_options& options) {
  std::string detail;
  auto opened = open_sqlite_store(options, &detail);
  EXPECT_TRUE(opened) << opened.error().message() << ": " << detail;
  return opened ? std::move(*opened) : nullptr;
}

sqlite_options options_for(const std::filesystem::path& path) {
  sqlite_options options;
  options.path = path.string();
  return options;
}

struct sqlite_traits {
  static std::unique_ptr<store> open(const std::filesystem::path& dir) {
    return open_or_fail(options_for(dir / "store.db"));
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, StoreConformance, ::testing::Types<sqlite_traits>);

sqlite_store_stats stats_of(store& s) {
  return dynamic_cast<sqlite_store&>(s).stats();
}

class SqliteStore : public ::testing::Test {
 protected:
  [[nodiscard]] std::filesystem::path db_path() const { return dir_.path() / "store.db"; }
  std::unique_ptr<store> open() { return open_or_fail(options_for(db_path())); }

  temp_dir dir_;
};

TEST_F(SqliteStore, EverythingSurvivesClosingAndReopening) {
  const std::set<std::uint64_t> snapshots{3, 7};
  doc_history doc{{"notes", "durable"}};
  doc_history other{{"notes", "another"}};
  {
    auto s = open();
    ASSERT_TRUE(s);
    write_mixed_history(*s, doc, snapshots);
    ASSERT_FALSE(other.append(*s, oplog::create_body{text_type, "2"}, false, 5000));
  }
  auto s = open();
  ASSERT_TRUE(s);
  expect_loads_every_version(*s, doc, snapshots);
  EXPECT_EQ(*load_ops(*s, doc.key, 0), doc.log);
  EXPECT_EQ(*version_at(*s, doc.key, 1005), 6U);
  const std::vector<document_summary> expected{{"another", 1, text_type}, {"durable", 11, text_type}};
  EXPECT_EQ(*list_documents(*s, "notes"), expected);
  // The CAS picks up from the stored head.
  EXPECT_EQ(commit(*s, other.next(ot::op{C::insert("x")})), std::error_code{});
}

TEST_F(SqliteStore, UsesWalMode) {
  auto s = open();
  ASSERT_TRUE(s);
  raw_db raw(db_path());
  EXPECT_EQ(raw.query("PRAGMA journal_mode"), "wal");
}

TEST_F(SqliteStore, ConcurrentCommitsShareTransactions) {
  auto s = open();
  ASSERT_TRUE(s);
  // 200 commits issued at once: 150 to distinct documents and 50 versions of
  // one document in a row (one batch may move its head many times).
  constexpr std::size_t distinct = 150;
  constexpr std::size_t in_a_row = 50;
  std::vector<std::future<std::error_code>> pending;
  auto submit = [&](const commit_request& request) {
    auto promise = std::make_shared<std::promise<std::error_code>>();
    pending.push_back(promise->get_future());
    s->commit(request, [promise](std::error_code e) { promise->set_value(e); });
  };
  std::vector<doc_history> docs;
  for (std::size_t i = 0; i < distinct; ++i) {
    docs.emplace_back(doc_key{"batch", "d" + std::to_string(i)});
    commit_request request = docs.back().next(oplog::create_body{text_type, "x"}, i % 2 == 0);
    submit(request);
    docs.back().accept(request);
  }
  doc_history row{{"batch", "row"}};
  for (std::size_t i = 0; i < in_a_row; ++i) {
    commit_request request =
        i == 0 ? row.next(oplog::create_body{text_type, ""}) : row.next(ot::op{C::insert("y")}, i % 10 == 0);
    submit(request);
    row.accept(request);
  }
  for (auto& f : pending) EXPECT_EQ(f.get(), std::error_code{});

  const sqlite_store_stats stats = stats_of(*s);
  EXPECT_EQ(stats.commits, distinct + in_a_row);
  EXPECT_LT(stats.transactions, distinct + in_a_row) << "every commit took its own transaction";
  EXPECT_GT(stats.largest_batch, 1U);
  EXPECT_EQ(stats.failed_batches, 0U);
  EXPECT_EQ(*load_ops(*s, row.key, 0), row.log);
  auto loaded = load(*s, row.key);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->base, row.at(41));  // snapshots after versions 0, 10, 20, 30, 40
  EXPECT_EQ(*oplog::replay(loaded->base, loaded->ops), row.head);
  EXPECT_EQ(list_documents(*s, "batch")->size(), distinct + 1);
}

TEST_F(SqliteStore, TheWriteAheadLogIsCopiedBackOnceItHoldsTheConfiguredPages) {
  // 400 documents created one transaction each: a few pages apiece. With a checkpoint every 100
  // pages the log file stays near 100 pages; with the default (4096) it keeps them all.
  auto log_bytes_after_writes = [&](const std::filesystem::path& path, std::uint32_t checkpoint_pages) {
    sqlite_options options = options_for(path);
    options.wal_checkpoint_pages = checkpoint_pages;
    auto s = open_or_fail(options);
    if (!s) return std::uintmax_t{0};
    for (int i = 0; i < 400; ++i) {
      doc_history doc{{"wal", "d" + std::to_string(i)}};
      EXPECT_EQ(commit(*s, doc.next(oplog::create_body{text_type, std::string(200, 'x')}, true)), std::error_code{});
    }
    return std::filesystem::file_size(path.string() + "-wal");
  };
  const auto small = log_bytes_after_writes(dir_.path() / "small.db", 100);
  const auto large = log_bytes_after_writes(dir_.path() / "large.db", sqlite_options{}.wal_checkpoint_pages);
  EXPECT_LT(small, 200U * 4200U) << "the log outgrew its checkpoint interval";
  EXPECT_GT(large, 3 * small) << "the default interval checkpointed as often as 100 pages";
}

TEST_F(SqliteStore, AConflictInABatchFailsOnlyItself) {
  auto s = open();
  ASSERT_TRUE(s);
  doc_history doc{{"c", "d"}};
  std::vector<commit_request> requests;
  requests.push_back(doc.next(oplog::create_body{text_type, ""}));
  doc.accept(requests.back());
  requests.push_back(doc.next(ot::op{C::insert("a")}));
  doc.accept(requests.back());
  commit_request duplicate = requests.back();  // same version again: must lose
  duplicate.op.body = ot::op{C::insert("zzz")};
  requests.push_back(duplicate);
  requests.push_back(doc.next(ot::op{C::insert("b")}));
  doc.accept(requests.back());

  std::vector<std::future<std::error_code>> results;
  for (const auto& request : requests) {
    auto promise = std::make_shared<std::promise<std::error_code>>();
    results.push_back(promise->get_future());
    s->commit(request, [promise](std::error_code e) { promise->set_value(e); });
  }
  EXPECT_EQ(results[0].get(), std::error_code{});
  EXPECT_EQ(results[1].get(), std::error_code{});
  EXPECT_EQ(results[2].get(), errc::version_conflict);
  EXPECT_EQ(results[3].get(), std::error_code{});
  EXPECT_EQ(*load_ops(*s, doc.key, 0), doc.log);
}

TEST_F(SqliteStore, ALockedDatabaseFailsTheWholeBatchAndWritesNothing) {
  sqlite_options options = options_for(db_path());
  options.busy_timeout_ms = 50;
  auto s = open_or_fail(options);
  ASSERT_TRUE(s);
  doc_history doc{{"c", "d"}};
  ASSERT_FALSE(doc.append(*s, oplog::create_body{text_type, "kept"}));

  raw_db other_process(db_path());
  other_process.exec("BEGIN IMMEDIATE");  // holds the write lock
  std::vector<std::future<std::error_code>> results;
  doc_history fresh{{"c", "fresh"}};
  for (const commit_request& request :
       {doc.next(ot::op{C::insert("lost")}, true), fresh.next(oplog::create_body{text_type, ""})}) {
    auto promise = std::make_shared<std::promise<std::error_code>>();
    results.push_back(promise->get_future());
    s->commit(request, [promise](std::error_code e) { promise->set_value(e); });
  }
  for (auto& f : results) EXPECT_EQ(f.get(), errc::unavailable);
  // Reads go on while the writer is blocked.
  EXPECT_EQ(*load_ops(*s, doc.key, 0), doc.log);
  other_process.exec("ROLLBACK");

  EXPECT_GE(stats_of(*s).failed_batches, 1U);
  EXPECT_EQ(*load_ops(*s, doc.key, 0), doc.log);
  EXPECT_TRUE(load_ops(*s, fresh.key, 0)->empty());
  EXPECT_EQ(load(*s, doc.key)->base, oplog::snapshot{});
  ASSERT_FALSE(doc.append(*s, ot::op{C::insert("later ")}));  // the store recovers
  EXPECT_EQ(*load_ops(*s, doc.key, 0), doc.log);
}

TEST_F(SqliteStore, CloseFromAHandlerDoesNotDeadlock) {
  auto s = open();
  ASSERT_TRUE(s);
  doc_history doc{{"c", "d"}};
  std::promise<void> closed;
  s->commit(doc.next(oplog::create_body{text_type, ""}), [&](std::error_code e) {
    EXPECT_FALSE(e);
    s->close();
    closed.set_value();
  });
  closed.get_future().get();
  EXPECT_EQ(load(*s, doc.key).error(), errc::closed);
  s.reset();  // joins the threads, from this thread
}

// Schema version 1 exactly as released; never change it (it stands for the
// files in the field).
constexpr const char* schema_v1 = R"sql(
  CREATE TABLE ops (collection TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, src TEXT NOT NULL,
    seq INTEGER NOT NULL, ts INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (collection, id, version)) WITHOUT ROWID;
  CREATE TABLE docs (collection TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, type TEXT,
    create_src TEXT, create_seq INTEGER, create_version INTEGER, PRIMARY KEY (collection, id)) WITHOUT ROWID;
  CREATE TABLE snapshots (collection TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, type TEXT,
    data TEXT NOT NULL, create_src TEXT, create_seq INTEGER, create_version INTEGER,
    PRIMARY KEY (collection, id, version)) WITHOUT ROWID;
  PRAGMA user_version = 1;
)sql";

TEST_F(SqliteStore, MigratesAVersion1Database) {
  {
    raw_db raw(db_path());
    raw.exec(schema_v1);
    raw.exec(
        "INSERT INTO ops VALUES ('c', 'old', 0, 'a', 1, 100, "
        "'{\"create\":{\"type\":\"http://sharejs.org/types/text-unicode\",\"data\":\"hi\"}}');"
        "INSERT INTO ops VALUES ('c', 'old', 1, 'a', 2, 200, '{\"op\":[2,\" there\"]}');"
        "INSERT INTO docs VALUES ('c', 'old', 2, 'http://sharejs.org/types/text-unicode', 'a', 1, 0);");
  }
  auto s = open();
  ASSERT_TRUE(s);
  auto loaded = load(*s, {"c", "old"});
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(oplog::replay(loaded->base, loaded->ops)->data, "hi there");
  EXPECT_EQ(*version_at(*s, {"c", "old"}, 150), 1U);
  doc_history doc{{"c", "old"}, *oplog::replay(loaded->base, loaded->ops)};
  EXPECT_FALSE(doc.append(*s, ot::op{C::insert("!")}));
  s.reset();

  raw_db raw(db_path());
  EXPECT_EQ(raw.query("PRAGMA user_version"), "4");
  EXPECT_EQ(raw.query("SELECT author FROM ops WHERE version = 0"), "");  // step 3: ops written before it have no author
  // Step 2 made the time index, step 4 dropped it (nt searches the log instead).
  EXPECT_EQ(raw.query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'ops_by_time'"), "0");
}

TEST_F(SqliteStore, RefusesASchemaNewerThanItKnows) {
  {
    raw_db raw(db_path());
    raw.exec("PRAGMA user_version = 99");
  }
  std::string detail;
  auto opened = open_sqlite_store(options_for(db_path()), &detail);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error(), open_errc::schema_too_new);
  EXPECT_NE(detail.find("99"), std::string::npos) << detail;
  EXPECT_NE(detail.find(db_path().string()), std::string::npos) << detail;
  raw_db raw(db_path());
  EXPECT_EQ(raw.query("PRAGMA user_version"), "99");  // left alone
}

TEST_F(SqliteStore, ADirectoryOrAPathUnderAFileCannotBeOpened) {
  std::string detail;
  auto directory = open_sqlite_store(options_for(dir_.path()), &detail);
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error(), open_errc::cannot_open);
  EXPECT_NE(detail.find(dir_.path().string()), std::string::npos) << detail;

  std::ofstream(dir_.path() / "plain-file") << "x";
  detail.clear();
  auto under_file = open_sqlite_store(options_for(dir_.path() / "plain-file" / "store.db"), &detail);
  ASSERT_FALSE(under_file);
  EXPECT_EQ(under_file.error(), open_errc::cannot_open);
  EXPECT_FALSE(detail.empty());
  EXPECT_FALSE(under_file.error().message().empty());
}

TEST_F(SqliteStore, AFileThatIsNotADatabaseCannotBeOpened) {
  std::ofstream(db_path()) << std::string(4096, 'x');
  std::string detail;
  auto opened = open_sqlite_store(options_for(db_path()), &detail);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error(), open_errc::cannot_open);
  EXPECT_NE(detail.find("not a database"), std::string::npos) << detail;
}

TEST_F(SqliteStore, RejectsInvalidOptions) {
  sqlite_options options = options_for(db_path());
  options.synchronous = "SOMETIMES; DROP TABLE ops";
  EXPECT_EQ(open_sqlite_store(options).error(), open_errc::invalid_option);
  options = options_for(db_path());
  options.max_batch = 0;
  EXPECT_EQ(open_sqlite_store(options).error(), open_errc::invalid_option);
  options = options_for("");
  EXPECT_EQ(open_sqlite_store(options).error(), open_errc::invalid_option);
  options = options_for(db_path());
  options.wal_checkpoint_pages = 0;  // no automatic checkpoint: a log growing without end
  EXPECT_EQ(open_sqlite_store(options).error(), open_errc::invalid_option);
  options = options_for(db_path());
  options.writer_cache_kib = 0;
  EXPECT_EQ(open_sqlite_store(options).error(), open_errc::invalid_option);
  options = options_for(db_path());
  options.wal_checkpoint_pages = 1U << 31;  // SQLite would read it as 0
  EXPECT_EQ(open_sqlite_store(options).error(), open_errc::invalid_option);
  options = options_for(db_path());
  options.synchronous = "normal";  // case does not matter
  EXPECT_TRUE(open_sqlite_store(options));
}

TEST_F(SqliteStore, AnUndecodableStoredOpIsCorrupt) {
  doc_history doc{{"c", "d"}};
  {
    auto s = open();
    ASSERT_TRUE(s);
    ASSERT_FALSE(doc.append(*s, oplog::create_body{text_type, "abc"}));
    ASSERT_FALSE(doc.append(*s, ot::op{C::insert("x")}));
    ASSERT_FALSE(doc.append(*s, ot::op{C::insert("y")}));
  }
  for (const char* body : {R"({"op":[{"x":1}]})", "not json", R"({"op":[1]})", R"({"create":{"type":1}})",
                           R"({"del":false})", R"({"op":["a"],"del":true})"}) {
    SCOPED_TRACE(body);
    {
      raw_db raw(db_path());
      raw.exec(std::string("UPDATE ops SET body = '") + body + "' WHERE version = 1");
    }
    auto s = open();
    ASSERT_TRUE(s);
    EXPECT_EQ(load(*s, doc.key).error(), errc::corrupt);
    EXPECT_EQ(load_ops(*s, doc.key, 0).error(), errc::corrupt);
    EXPECT_EQ(*load_ops(*s, doc.key, 2), std::vector(doc.log.begin() + 2, doc.log.end()));  // others still read
  }
}

TEST_F(SqliteStore, AGapInTheLogIsCorrupt) {
  doc_history doc{{"c", "d"}};
  {
    auto s = open();
    ASSERT_TRUE(s);
    ASSERT_FALSE(doc.append(*s, oplog::create_body{text_type, "abc"}));
    ASSERT_FALSE(doc.append(*s, ot::op{C::insert("x")}));
    ASSERT_FALSE(doc.append(*s, ot::op{C::insert("y")}));
  }
  {
    raw_db raw(db_path());
    raw.exec("DELETE FROM ops WHERE version = 1");
  }
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(load(*s, doc.key).error(), errc::corrupt);
  EXPECT_EQ(load_ops(*s, doc.key, 0).error(), errc::corrupt);
  EXPECT_EQ(version_at(*s, doc.key, 0).error(), errc::corrupt);  // the search reads version 1
}

// `nt` binary-searches the log on the time (no index since schema 4): on a long log with runs of
// equal timestamps it answers what counting does, for every time around every op's.
TEST_F(SqliteStore, VersionAtSearchesALongLogAsCountingWould) {
  auto s = open();
  ASSERT_TRUE(s);
  doc_history doc{{"c", "long"}};
  std::mt19937 random(7);
  std::int64_t ts = 1000;
  ASSERT_FALSE(doc.append(*s, oplog::create_body{text_type, ""}, false, ts));
  for (int i = 0; i < 700; ++i) {
    ts += static_cast<std::int64_t>(random() % 3);  // runs of equal times
    ASSERT_FALSE(doc.append(*s, ot::op{C::insert("x")}, i % 97 == 0, ts));
  }
  doc_history other{{"c", "long2"}};  // ops of a neighbouring key never count
  ASSERT_FALSE(other.append(*s, oplog::create_body{text_type, ""}, false, 0));
  for (std::int64_t t = 990; t <= ts + 2; ++t) {
    const auto expected = static_cast<std::uint64_t>(std::count_if(
        doc.log.begin(), doc.log.end(), [&](const oplog::op_record& op) { return op.timestamp_ms <= t; }));
    ASSERT_EQ(*version_at(*s, doc.key, t), expected) << "at " << t;
  }
  // A load names the time of the op under its snapshot: the pipeline stamps no op before it.
  auto loaded = load(*s, doc.key, 590);
  ASSERT_TRUE(loaded);
  ASSERT_EQ(loaded->base.version, 584U);  // the snapshot stored with edit 582, the op at version 583
  EXPECT_EQ(loaded->base_timestamp_ms, doc.log[583].timestamp_ms);
  EXPECT_EQ(loaded->ops.size(), 6U);
  EXPECT_EQ(load(*s, other.key)->base_timestamp_ms, 0);  // no snapshot: the ops say it
  EXPECT_EQ(*version_at(*s, {"c", "long1"}, ts), 0U);
  EXPECT_EQ(*version_at(*s, other.key, std::numeric_limits<std::int64_t>::min()), 0U);
  EXPECT_EQ(*version_at(*s, other.key, 0), 1U);
}

}  // namespace
}  // namespace otsync::store::test
