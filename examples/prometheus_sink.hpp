// examples/prometheus_sink.hpp: a net::metrics_sink that keeps tether's counters, gauges and
// timings in memory and renders them in Prometheus' text exposition format (version 0.0.4).
// Timings become summaries without quantiles: NAME_seconds_sum and NAME_seconds_count.
#pragma once

#include <tether/net/metrics.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>

namespace tether_examples {

class prometheus_sink final : public tether::net::metrics_sink {
 public:
  void count(std::string_view name, std::string_view label, std::uint64_t delta) override {
    std::lock_guard lk(mu_);
    counters_[std::string(name)][std::string(label)] += static_cast<double>(delta);
  }
  void gauge(std::string_view name, std::string_view label, double value) override {
    std::lock_guard lk(mu_);
    gauges_[std::string(name)][std::string(label)] = value;
  }
  void observe(std::string_view name, std::string_view label, std::chrono::microseconds value) override {
    std::lock_guard lk(mu_);
    auto& t = timings_[std::string(name) + "_seconds"][std::string(label)];
    t.sum += static_cast<double>(value.count()) / 1e6;
    ++t.count;
  }

  /// A counter's or gauge's value (0 when never reported); `label` as reported.
  double value(std::string_view name, std::string_view label = {}) const {
    std::lock_guard lk(mu_);
    for (const auto* m : {&counters_, &gauges_}) {
      if (auto it = m->find(std::string(name)); it != m->end()) {
        if (auto jt = it->second.find(std::string(label)); jt != it->second.end()) return jt->second;
      }
    }
    return 0;
  }
  /// How many observations a timing has (0 when none).
  std::uint64_t observations(std::string_view name, std::string_view label = {}) const {
    std::lock_guard lk(mu_);
    auto it = timings_.find(std::string(name) + "_seconds");
    if (it == timings_.end()) return 0;
    auto jt = it->second.find(std::string(label));
    return jt == it->second.end() ? 0 : jt->second.count;
  }

  /// Everything, as a Prometheus scrape expects it.
  std::string render() const {
    std::lock_guard lk(mu_);
    std::ostringstream out;
    out.precision(17);
    const auto series = [&out](const std::string& name, const std::string& label, double v) {
      out << name << (label.empty() ? "" : "{" + label + "}") << ' ' << v << '\n';
    };
    for (const auto& [name, by_label] : counters_) {
      out << "# TYPE " << name << " counter\n";
      for (const auto& [label, v] : by_label) series(name, label, v);
    }
    for (const auto& [name, by_label] : gauges_) {
      out << "# TYPE " << name << " gauge\n";
      for (const auto& [label, v] : by_label) series(name, label, v);
    }
    for (const auto& [name, by_label] : timings_) {
      out << "# TYPE " << name << " summary\n";
      for (const auto& [label, t] : by_label) {
        series(name + "_sum", label, t.sum);
        series(name + "_count", label, static_cast<double>(t.count));
      }
    }
    return out.str();
  }

 private:
  struct timing {
    double sum = 0;
    std::uint64_t count = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, double>> counters_, gauges_;
  std::map<std::string, std::map<std::string, timing>> timings_;
};

}  // namespace tether_examples
