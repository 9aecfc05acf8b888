// SVG charts written as text: the training report's curves (apps/report.cpp) and the
// benchmark plots of `ichseg bench` (apps/cmd_bench.cpp). Each chart is a complete <svg>
// element with its own xmlns, so it can be inlined in HTML or saved as a .svg file.
#pragma once

#include <string>
#include <vector>

namespace ich::app {

// Lines of one chart: x values shared, one named series each. Non-finite values are gaps.
struct Series {
  std::string name;
  std::vector<double> y;
};

// y_label is written above the y axis ("" for none).
std::string svg_line_chart(const std::string& title, const std::string& x_label,
                           const std::vector<double>& x, const std::vector<Series>& series,
                           const std::string& y_label = "");

// Grouped bars: one group per category, one bar per series in each group (series[s].y[i] is
// the bar of series s in category i). Non-finite values leave the bar out and write "n/a".
std::string svg_bar_chart(const std::string& title, const std::string& y_label,
                          const std::vector<std::string>& categories,
                          const std::vector<Series>& series);

// Several charts (from the functions above) in one SVG document, `columns` per row.
std::string svg_grid(const std::vector<std::string>& charts, int columns = 2);

std::string html_escape(const std::string& s);  // also escapes text for SVG

}  // namespace ich::app
