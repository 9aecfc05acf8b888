#include "apps/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace ich::app {

namespace {

// Every chart has the same frame, so svg_grid can place them without parsing.
constexpr double kWidth = 520, kHeight = 300, kLeft = 60, kRight = 20, kTop = 34, kBottom = 44;
const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                               "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
constexpr size_t kColorCount = sizeof kColors / sizeof kColors[0];

std::string number_text(double v, int precision) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream os;
  os << std::setprecision(precision) << v;
  return os.str();
}

// Nice tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int target = 5) {
  const double span = hi - lo;
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  }
  std::vector<double> out;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push_back(t);
  return out;
}

void open_chart(std::ostringstream& os, const std::string& title) {
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\""
     << kHeight << "\" viewBox=\"0 0 " << kWidth << " " << kHeight
     << "\" font-family=\"sans-serif\" font-size=\"11\">"
     << "<text x=\"" << kWidth / 2 << "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">"
     << html_escape(title) << "</text>";
}

std::string no_data(std::ostringstream& os) {
  os << "<text x=\"" << kWidth / 2 << "\" y=\"" << kHeight / 2
     << "\" text-anchor=\"middle\">no data</text></svg>";
  return os.str();
}

// The plot frame, horizontal grid lines with y tick labels, and the y axis label; returns
// the mapping of a y value to its pixel row.
struct YAxis {
  double lo, hi;
  double operator()(double v) const {
    return kHeight - kBottom - (v - lo) / (hi - lo) * (kHeight - kTop - kBottom);
  }
};

YAxis draw_frame(std::ostringstream& os, double ylo, double yhi, const std::string& y_label) {
  const YAxis py{ylo, yhi};
  os << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << kWidth - kLeft - kRight
     << "\" height=\"" << kHeight - kTop - kBottom << "\" fill=\"none\" stroke=\"#999\"/>";
  for (double t : ticks(ylo, yhi)) {
    os << "<line x1=\"" << kLeft << "\" x2=\"" << kWidth - kRight << "\" y1=\"" << py(t)
       << "\" y2=\"" << py(t) << "\" stroke=\"#eee\"/><text x=\"" << kLeft - 6 << "\" y=\""
       << py(t) + 4 << "\" text-anchor=\"end\">" << number_text(t, 3) << "</text>";
  }
  if (!y_label.empty())
    os << "<text x=\"" << 4 << "\" y=\"" << kTop - 8 << "\">" << html_escape(y_label)
       << "</text>";
  return py;
}

void legend(std::ostringstream& os, const std::vector<Series>& series) {
  for (size_t s = 0; s < series.size(); ++s) {
    os << "<rect x=\"" << kLeft + 10 << "\" y=\"" << kTop + 8 + 16 * s
       << "\" width=\"12\" height=\"3\" fill=\"" << kColors[s % kColorCount]
       << "\"/><text x=\"" << kLeft + 28 << "\" y=\"" << kTop + 13 + 16 * s << "\">"
       << html_escape(series[s].name) << "</text>";
  }
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string svg_line_chart(const std::string& title, const std::string& x_label,
                           const std::vector<double>& x, const std::vector<Series>& series,
                           const std::string& y_label) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (double v : x)
    if (std::isfinite(v)) xlo = std::min(xlo, v), xhi = std::max(xhi, v);
  for (const auto& s : series)
    for (double v : s.y)
      if (std::isfinite(v)) ylo = std::min(ylo, v), yhi = std::max(yhi, v);
  std::ostringstream os;
  open_chart(os, title);
  if (!std::isfinite(xlo) || !std::isfinite(ylo)) return no_data(os);
  if (xhi == xlo) xhi = xlo + 1;
  if (yhi == ylo) yhi = ylo + (ylo == 0 ? 1 : std::fabs(ylo) * 0.1);
  const double pad = (yhi - ylo) * 0.05;
  const YAxis py = draw_frame(os, ylo - pad, yhi + pad, y_label);
  auto px = [&](double v) { return kLeft + (v - xlo) / (xhi - xlo) * (kWidth - kLeft - kRight); };
  for (double t : ticks(xlo, xhi)) {
    os << "<text x=\"" << px(t) << "\" y=\"" << kHeight - kBottom + 16
       << "\" text-anchor=\"middle\">" << number_text(t, 4) << "</text>";
  }
  os << "<text x=\"" << (kLeft + kWidth - kRight) / 2 << "\" y=\"" << kHeight - 8
     << "\" text-anchor=\"middle\">" << html_escape(x_label) << "</text>";
  for (size_t s = 0; s < series.size(); ++s) {
    const char* color = kColors[s % kColorCount];
    std::ostringstream pts;
    auto flush = [&]() {
      if (!pts.str().empty())
        os << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\" points=\""
           << pts.str() << "\"/>";
      pts.str("");
    };
    for (size_t i = 0; i < x.size() && i < series[s].y.size(); ++i) {
      const double v = series[s].y[i];
      if (!std::isfinite(v) || !std::isfinite(x[i])) {
        flush();
        continue;
      }
      pts << px(x[i]) << "," << py(v) << " ";
      os << "<circle cx=\"" << px(x[i]) << "\" cy=\"" << py(v) << "\" r=\"2.5\" fill=\"" << color
         << "\"/>";
    }
    flush();
  }
  legend(os, series);
  os << "</svg>";
  return os.str();
}

std::string svg_bar_chart(const std::string& title, const std::string& y_label,
                          const std::vector<std::string>& categories,
                          const std::vector<Series>& series) {
  double yhi = -INFINITY;
  for (const auto& s : series)
    for (double v : s.y)
      if (std::isfinite(v)) yhi = std::max(yhi, v);
  std::ostringstream os;
  open_chart(os, title);
  if (categories.empty() || series.empty() || !std::isfinite(yhi)) return no_data(os);
  if (yhi <= 0) yhi = 1;
  const YAxis py = draw_frame(os, 0.0, yhi * 1.25, y_label);  // headroom for the legend
  const double group = (kWidth - kLeft - kRight) / double(categories.size());
  const double bar = group * 0.8 / double(series.size());
  for (size_t i = 0; i < categories.size(); ++i) {
    const double x0 = kLeft + group * (double(i) + 0.1);
    os << "<text x=\"" << kLeft + group * (double(i) + 0.5) << "\" y=\"" << kHeight - kBottom + 16
       << "\" text-anchor=\"middle\">" << html_escape(categories[i]) << "</text>";
    for (size_t s = 0; s < series.size(); ++s) {
      const double x = x0 + bar * double(s);
      const double v = i < series[s].y.size() ? series[s].y[i] : NAN;
      if (!std::isfinite(v)) {
        os << "<text x=\"" << x + bar / 2 << "\" y=\"" << py(0) - 4
           << "\" text-anchor=\"middle\" fill=\"#777\">n/a</text>";
        continue;
      }
      os << "<rect x=\"" << x << "\" y=\"" << py(v) << "\" width=\"" << bar * 0.9
         << "\" height=\"" << py(0) - py(v) << "\" fill=\"" << kColors[s % kColorCount]
         << "\"/><text x=\"" << x + bar * 0.45 << "\" y=\"" << py(v) - 3
         << "\" text-anchor=\"middle\" font-size=\"9\">" << number_text(v, 3) << "</text>";
    }
  }
  legend(os, series);
  os << "</svg>";
  return os.str();
}

std::string svg_grid(const std::vector<std::string>& charts, int columns) {
  columns = std::max(1, std::min<int>(columns, int(std::max<size_t>(1, charts.size()))));
  const int rows = int((charts.size() + size_t(columns) - 1) / size_t(columns));
  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth * columns
     << "\" height=\"" << kHeight * std::max(rows, 1) << "\" viewBox=\"0 0 " << kWidth * columns
     << " " << kHeight * std::max(rows, 1) << "\">";
  for (size_t i = 0; i < charts.size(); ++i) {
    os << "<g transform=\"translate(" << kWidth * double(i % size_t(columns)) << ","
       << kHeight * double(i / size_t(columns)) << ")\">" << charts[i] << "</g>";
  }
  os << "</svg>";
  return os.str();
}

}  // namespace ich::app
