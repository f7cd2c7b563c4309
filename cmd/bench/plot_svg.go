package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// Chart geometry, in SVG user units.
const (
	plotWidth  = 900
	panelH     = 260
	marginL    = 70
	marginR    = 20
	marginTop  = 56
	panelGap   = 60
	plotTicks  = 6
	plotHeight = marginTop + 2*panelH + panelGap + 50
)

// series is one line of a panel.
type series struct {
	name  string
	color string
	ys    []float64
}

// writeSVG draws latency (p50, p99) and deliveries per second over the
// run's seconds as two line charts, one above the other.
func writeSVG(w io.Writer, title string, tl []second) error {
	xs := make([]float64, len(tl))
	p50, p99, deliv := make([]float64, len(tl)), make([]float64, len(tl)), make([]float64, len(tl))
	for i, s := range tl {
		xs[i], p50[i], p99[i], deliv[i] = s.T, s.P50ms, s.P99ms, float64(s.Deliveries)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotWidth, plotHeight, plotWidth, plotHeight)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15">%s</text>`+"\n", marginL, escape(title))
	panel(&b, marginTop, "latency (ms)", xs, []series{{"p50", "#1f77b4", p50}, {"p99", "#d62728", p99}})
	panel(&b, marginTop+panelH+panelGap, "deliveries per second", xs, []series{{"deliveries/s", "#2ca02c", deliv}})
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">seconds since start</text>`+"\n", marginL+(plotWidth-marginL-marginR)/2, plotHeight-8)
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// panel draws axes, ticks, a legend and the lines of one chart whose top
// edge is at top.
func panel(b *bytes.Buffer, top int, label string, xs []float64, lines []series) {
	w, h := float64(plotWidth-marginL-marginR), float64(panelH)
	xmax, xstep := axis(maxOf(xs))
	var ylargest float64
	for _, s := range lines {
		ylargest = max(ylargest, maxOf(s.ys))
	}
	ymax, ystep := axis(ylargest)
	px := func(x float64) float64 { return marginL + x/xmax*w }
	py := func(y float64) float64 { return float64(top) + h - y/ymax*h }
	fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", marginL, top-8, escape(label))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", marginL, top, w, h)
	for y := 0.0; y <= ymax*(1+1e-9); y += ystep {
		fmt.Fprintf(b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", marginL, marginL+w, py(y), py(y))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-6, py(y)+4, tickText(y))
	}
	for x := 0.0; x <= xmax*(1+1e-9); x += xstep {
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", px(x), float64(top)+h+16, tickText(x))
	}
	for k, s := range lines {
		fmt.Fprintf(b, `<text x="%.0f" y="%d" fill="%s">%s</text>`+"\n", marginL+w-90*float64(len(lines)-k), top-8, s.color, escape(s.name))
		if len(s.ys) == 0 {
			continue
		}
		var pts strings.Builder
		for i, y := range s.ys {
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(xs[i]), py(y))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", s.color, strings.TrimSpace(pts.String()))
	}
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			m = max(m, x)
		}
	}
	return m
}

// axis returns the top of an axis showing values up to v, and the tick
// step: about plotTicks steps of 1, 2 or 5 times a power of ten.
func axis(v float64) (top, step float64) {
	step = niceCeil(v / plotTicks)
	return max(step, step*math.Ceil(v/step)), step
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for v ≤ 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

func tickText(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", math.Round(v*1000)/1000)
}

func escape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
