#include "otsync/ot/op_composer.hpp"

#include <gtest/gtest.h>

#include "otsync/ot/text_unicode.hpp"
#include "support/random_ops.hpp"

namespace otsync::ot {
namespace {

using C = component;

TEST(OpComposer, EmptyIsTheNoop) {
  op_composer composer;
  EXPECT_EQ(composer.finish(), op{});
}

TEST(OpComposer, RejectsInvalidOpsAndKeepsItsState) {
  op_composer composer;
  ASSERT_FALSE(composer.compose({C::insert("ab")}));
  EXPECT_EQ(composer.compose({C::skip(1), C::skip(1), C::insert("x")}), errc::adjacent_skips);
  EXPECT_EQ(composer.finish(), (op{C::insert("ab")}));
}

TEST(OpComposer, TypingAndDeletingInsideAnInsert) {
  op_composer composer;
  ASSERT_FALSE(composer.compose({C::insert("hello")}));
  ASSERT_FALSE(composer.compose({C::skip(2), C::insert("😀")}));
  ASSERT_FALSE(composer.compose({C::skip(1), C::erase(1)}));
  ASSERT_FALSE(composer.compose({C::erase(1)}));
  EXPECT_EQ(composer.finish(), (op{C::insert("😀llo")}));
}

TEST(OpComposer, KeepsDeletesOfTheBaseDocumentInOrder) {
  op_composer composer;
  ASSERT_FALSE(composer.compose({C::skip(3), C::erase("X"), C::insert("y")}));
  ASSERT_FALSE(composer.compose({C::skip(3), C::insert("z")}));  // lands before the delete, as compose
  ASSERT_FALSE(composer.compose({C::skip(2), C::erase("ab")}));
  const op expected = *compose(*compose({C::skip(3), C::erase("X"), C::insert("y")}, {C::skip(3), C::insert("z")}),
                               {C::skip(2), C::erase("ab")});
  EXPECT_EQ(composer.finish(), expected);
}

// The composer must equal repeated compose, component for component.
TEST(OpComposer, EqualsRepeatedComposeOnRandomOps) {
  test::random_ops random(test::fuzz_seed(42));
  const int rounds = test::fuzz_iterations(300);
  for (int round = 0; round < rounds; ++round) {
    std::string doc = random.document(30);
    op_composer composer;
    op folded;
    const auto steps = random.uniform(1, 40);
    for (std::uint64_t step = 0; step < steps; ++step) {
      const op next = random.op_for(doc);
      ASSERT_FALSE(composer.compose(next));
      auto composed = compose(folded, next);
      ASSERT_TRUE(composed.has_value());
      folded = std::move(*composed);
      doc = *ot::apply(doc, next);
      ASSERT_EQ(composer.finish(), folded) << "round " << round << " step " << step;
    }
  }
}

TEST(OpComposer, LongTypingSessionStaysCompact) {
  op_composer composer;
  std::string expected;
  for (int i = 0; i < 20000; ++i) {
    const auto at = static_cast<std::uint64_t>(expected.size() / 2);
    op_builder keystroke;
    keystroke.skip(at).insert("k");
    ASSERT_FALSE(composer.compose(std::move(keystroke).finish()));
    expected.insert(expected.begin() + static_cast<std::ptrdiff_t>(at), 'k');
  }
  EXPECT_EQ(composer.finish(), (op{C::insert(expected)}));
  EXPECT_LT(composer.piece_count(), 2000U);
}

}  // namespace
}  // namespace otsync::ot

namespace otsync::ot {
namespace {

TEST(OpComposer, RefusesToGrowPastTheLengthLimit) {
  op_composer composer;
  const op huge{component::erase(max_length / 2 + 1)};
  ASSERT_FALSE(composer.compose(huge));
  EXPECT_EQ(composer.compose(huge), errc::length_out_of_range);
  EXPECT_EQ(composer.finish(), huge);
  EXPECT_FALSE(check(composer.finish()));
}

TEST(OpComposer, WalksPastTheEndOfTheAccumulatedOp) {
  op_composer composer;
  op folded;
  const std::vector<op> steps{{component::insert("ab")},
                              {component::skip(5), component::insert("x")},
                              {component::skip(1), component::erase(9)},
                              {component::erase("q")},
                              {component::skip(2), component::erase(3), component::insert("z")}};
  for (const auto& step : steps) {
    ASSERT_FALSE(composer.compose(step));
    folded = *compose(folded, step);
    EXPECT_EQ(composer.finish(), folded);
  }
}

}  // namespace
}  // namespace otsync::ot
