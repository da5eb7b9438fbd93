#include "otsync/store/memory_store.hpp"

#include "store_conformance.hpp"

namespace otsync::store::test {
namespace {

struct memory_traits {
  static std::unique_ptr<store> open(const std::filesystem::path& /*dir*/) { return make_memory_store(); }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, StoreConformance, ::testing::Types<memory_traits>);

// A load names the time of the op under its snapshot: the pipeline stamps no op before it.
TEST(MemoryStore, ALoadNamesTheTimeOfTheOpUnderItsSnapshot) {
  auto s = make_memory_store();
  doc_history doc{{"c", "d"}};
  ASSERT_FALSE(doc.append(*s, oplog::create_body{text_type, ""}, false, 100));
  ASSERT_FALSE(doc.append(*s, ot::op{ot::component::insert("a")}, true, 250));
  auto loaded = load(*s, doc.key);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->base.version, 2U);
  EXPECT_EQ(loaded->base_timestamp_ms, 250);
  loaded = load(*s, doc.key, 1);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->base.version, 0U);
  EXPECT_EQ(loaded->base_timestamp_ms, 0);
}

TEST(MemoryStore, HandlersRunInlineInTheCaller) {
  auto s = make_memory_store();
  bool called = false;
  s->load({"c", "d"}, std::nullopt, [&](ot::result<loaded_document> r) { called = r.has_value(); });
  EXPECT_TRUE(called);
}

TEST(MemoryStore, AHandlerMayCallBackIntoTheStore) {
  auto s = make_memory_store();
  doc_history doc{{"c", "d"}};
  commit_request request = doc.next(oplog::create_body{text_type, "x"});
  bool nested = false;
  s->commit(request, [&](std::error_code e) {
    ASSERT_FALSE(e);
    s->load(doc.key, std::nullopt, [&](ot::result<loaded_document> r) { nested = r && r->ops.size() == 1; });
  });
  EXPECT_TRUE(nested);
}

}  // namespace
}  // namespace otsync::store::test
