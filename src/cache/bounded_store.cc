#include "cache/bounded_store.h"

#include <algorithm>
#include <cstdlib>

#include "core/assert.h"

namespace statekv::cache {

const char* policy_name(Policy policy) {
  return policy == Policy::kLru ? "lru" : "w-tinylfu";
}

BoundedStore::BoundedStore(const StoreOptions& options) : options_(options) {
  if (options_.policy == Policy::kLru) {
    window_max_ = options_.max_bytes;
    protected_max_ = 0;
  } else {
    window_max_ = std::max<uint64_t>(
        1,
        static_cast<uint64_t>(static_cast<double>(options_.max_bytes) * options_.window_fraction));
    const uint64_t main = options_.max_bytes - std::min(window_max_, options_.max_bytes);
    protected_max_ = static_cast<uint64_t>(static_cast<double>(main) * options_.protected_fraction);
    sketch_ = std::make_unique<FrequencySketch>(1024);
  }
}

uint64_t BoundedStore::hash_key(std::string_view key) {
  // std::hash may be weak in its low bits; the sketch mixes it again per row.
  return std::hash<std::string_view>{}(key)*0x9e3779b97f4a7c15ULL;
}

BoundedStore::List& BoundedStore::list_of(Region region) {
  switch (region) {
    case Region::kWindow:
      return window_;
    case Region::kProbation:
      return probation_;
    case Region::kProtected:
      return protected_;
  }
  std::abort();
}

uint64_t& BoundedStore::bytes_of(Region region) {
  switch (region) {
    case Region::kWindow:
      return window_bytes_;
    case Region::kProbation:
      return probation_bytes_;
    case Region::kProtected:
      return protected_bytes_;
  }
  std::abort();
}

void BoundedStore::record_frequency(uint64_t hash) {
  if (!sketch_) return;
  // Like Caffeine's ensureCapacity: the sketch grows with the number of
  // resident entries (counts are lost when it does, which aging would do anyway).
  if (map_.size() > sketch_->expected_entries()) {
    sketch_ = std::make_unique<FrequencySketch>(sketch_->expected_entries() * 2);
  }
  sketch_->increment(hash);
}

void BoundedStore::move_to(Node& node, Region region) {
  List& from = list_of(node.region);
  List& to = list_of(region);
  to.splice(to.begin(), from, node.pos);
  node.pos = to.begin();
  bytes_of(node.region) -= node.charge;
  bytes_of(region) += node.charge;
  node.region = region;
}

void BoundedStore::on_access(Node& node) {
  switch (node.region) {
    case Region::kWindow:
    case Region::kProtected:
      move_to(node, node.region);
      break;
    case Region::kProbation:
      move_to(node, Region::kProtected);
      while (protected_bytes_ > protected_max_ && !protected_.empty()) {
        move_to(*protected_.back(), Region::kProbation);
      }
      break;
  }
}

Entry* BoundedStore::find(std::string_view key) {
  const uint64_t hash = hash_key(key);
  record_frequency(hash);
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  on_access(it->second);
  return &it->second.entry;
}

bool BoundedStore::put(std::string_view key, Entry entry) {
  const uint64_t charge = BoundedStore::charge(key, entry);
  auto it = map_.find(key);
  if (charge > options_.max_bytes) {
    if (it != map_.end()) remove(it->second, false);
    return false;
  }
  if (it != map_.end()) {
    Node& node = it->second;
    bytes_of(node.region) -= node.charge;
    bytes_ -= node.charge;
    node.entry = std::move(entry);
    node.charge = charge;
    bytes_of(node.region) += charge;
    bytes_ += charge;
    on_access(node);
  } else {
    auto [pos, inserted] = map_.try_emplace(std::string(key));
    Node& node = pos->second;
    node.entry = std::move(entry);
    node.key = &pos->first;
    node.hash = hash_key(key);
    node.charge = charge;
    node.region = Region::kWindow;
    window_.push_front(&node);
    node.pos = window_.begin();
    window_bytes_ += charge;
    bytes_ += charge;
  }
  evict();
  return map_.find(key) != map_.end();
}

bool BoundedStore::erase(std::string_view key) {
  auto it = map_.find(key);
  if (it == map_.end()) return false;
  remove(it->second, false);
  return true;
}

void BoundedStore::clear() {
  map_.clear();
  window_.clear();
  probation_.clear();
  protected_.clear();
  window_bytes_ = probation_bytes_ = protected_bytes_ = bytes_ = 0;
}

void BoundedStore::remove(Node& node, bool eviction) {
  list_of(node.region).erase(node.pos);
  bytes_of(node.region) -= node.charge;
  bytes_ -= node.charge;
  if (eviction) ++evictions_;
  map_.erase(*node.key);  // destroys node
}

void BoundedStore::evict() {
  if (options_.policy == Policy::kLru) {
    while (bytes_ > options_.max_bytes) remove(*window_.back(), true);
    return;
  }
  // The window's overflow moves to the MRU end of probation: these are the
  // candidates for admission to the main space.
  size_t candidates = 0;
  while (window_bytes_ > window_max_ && !window_.empty()) {
    move_to(*window_.back(), Region::kProbation);
    ++candidates;
  }
  while (bytes_ > options_.max_bytes) {
    if (candidates == 0 || probation_.size() <= candidates) {
      // No contest to hold: plain LRU order over probation, then protected,
      // then the window.
      Node* victim = !probation_.empty()   ? probation_.back()
                     : !protected_.empty() ? protected_.back()
                                           : window_.back();
      if (victim->region == Region::kProbation && candidates > probation_.size() - 1) {
        candidates = probation_.size() - 1;
      }
      remove(*victim, true);
      continue;
    }
    // The oldest candidate (closest to the LRU end among them) against the
    // probation victim: TinyLFU admits the candidate only if it is more popular.
    auto cand_it = probation_.begin();
    std::advance(cand_it, candidates - 1);
    Node* candidate = *cand_it;
    Node* victim = probation_.back();
    if (sketch_->frequency(candidate->hash) > sketch_->frequency(victim->hash)) {
      remove(*victim, true);
    } else {
      remove(*candidate, true);
      --candidates;
    }
  }
}

void BoundedStore::check_invariants() const {
  uint64_t total = 0, counted = 0;
  auto walk = [&](const List& list, Region region, uint64_t expected) {
    uint64_t sum = 0;
    for (const Node* node : list) {
      SKV_ASSERT(node->region == region, "bounded store invariant");
      SKV_ASSERT(map_.find(*node->key) != map_.end(), "bounded store invariant");
      SKV_ASSERT(&map_.find(*node->key)->second == node, "bounded store invariant");
      sum += node->charge;
      ++counted;
    }
    SKV_ASSERT(sum == expected, "bounded store invariant");
    total += sum;
  };
  walk(window_, Region::kWindow, window_bytes_);
  walk(probation_, Region::kProbation, probation_bytes_);
  walk(protected_, Region::kProtected, protected_bytes_);
  SKV_ASSERT(counted == map_.size(), "bounded store invariant");
  SKV_ASSERT(total == bytes_, "bounded store invariant");
  SKV_ASSERT(bytes_ <= options_.max_bytes, "bounded store invariant");
}

}  // namespace statekv::cache
