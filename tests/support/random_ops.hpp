// Random documents and text-unicode ops for property tests: mixed ASCII,
// 2-, 3- and 4-byte (astral) characters, both delete forms.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "otsync/ot/op.hpp"
#include "otsync/ot/unicode.hpp"

namespace otsync::test {

/// Iterations for randomised tests: `fallback`, or OTSYNC_FUZZ_ITERATIONS when set.
inline int fuzz_iterations(int fallback) {
  if (const char* env = std::getenv("OTSYNC_FUZZ_ITERATIONS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  return fallback;
}

/// The seed for randomised tests: OTSYNC_FUZZ_SEED when set, else `fallback`.
inline std::uint64_t fuzz_seed(std::uint64_t fallback) {
  if (const char* env = std::getenv("OTSYNC_FUZZ_SEED")) return std::strtoull(env, nullptr, 10);
  return fallback;
}

class random_ops {
 public:
  explicit random_ops(std::uint64_t seed) : rng_(seed) {}

  std::uint64_t uniform(std::uint64_t low, std::uint64_t high) {
    return std::uniform_int_distribution<std::uint64_t>(low, high)(rng_);
  }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  /// One random character as UTF-8.
  std::string character() {
    static const char* const pool[] = {"a", "b", "c", " ", "x", "\n", "é", "ß", "中", "€", "😀", "🤟", "𝄞", "z"};
    return pool[uniform(0, std::size(pool) - 1)];
  }

  std::string text(std::uint64_t max_code_points) {
    std::string out;
    const auto n = uniform(1, max_code_points);
    for (std::uint64_t i = 0; i < n; ++i) out += character();
    return out;
  }

  std::string document(std::uint64_t max_code_points) { return chance(0.1) ? std::string() : text(max_code_points); }

  /// A valid, canonical op for a document of `length` code points whose
  /// text is `doc` (used for `{d:"text"}` deletes).
  ot::op op_for(const std::string& doc) {
    const std::uint64_t length = ot::unicode::count_code_points(doc);
    ot::op_builder builder;
    std::uint64_t position = 0;
    const auto steps = uniform(1, 4);
    for (std::uint64_t step = 0; step < steps; ++step) {
      if (position < length && chance(0.6)) {
        const auto n = uniform(1, length - position);
        builder.skip(n);
        position += n;
      }
      if (chance(0.5)) builder.insert(text(6));
      if (position < length && chance(0.5)) {
        const auto n = uniform(1, std::min<std::uint64_t>(length - position, 6));
        if (chance(0.5)) {
          builder.erase_text(std::string(ot::unicode::substr(doc, position, n)));
        } else {
          builder.erase(n);
        }
        position += n;
      }
    }
    return std::move(builder).finish();
  }

 private:
  std::mt19937_64 rng_;
};

}  // namespace otsync::test
