#include "otsync/store/memory_store.hpp"

#include "store_conformance.hpp"

namespace otsync::store::test {
namespace {

struct memory_traits {
  static std::unique_ptr<store> open(const std::filesystem::path& /*dir*/) { return make_memory_store(); }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, StoreConformance, ::testing::Types<memory_traits>);

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
