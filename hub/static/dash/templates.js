// Built-in dashboard specs. "device" is the device page's charts: open it as a dashboard
// (#/dashboard/template/device/NAME) to change it and save a copy.

const IF = "/interfaces/interface[name=$interface]/state/counters";
const ALL_IF = "/interfaces/interface[name=*]/state/counters";

export const TEMPLATES = {
  device: {
    title: "Device overview",
    spec: {
      range: "1h",
      variables: [{ name: "device", default: "" }, { name: "interface", default: "" }],
      widgets: [
        { type: "line", title: "traffic of $interface", unit: "bit/s", w: 6, h: 1, queries: [
          { device: "$device", path: `${IF}/in-octets`, fn: "rate", scale: 8, legend: "in" },
          { device: "$device", path: `${IF}/out-octets`, fn: "rate", scale: 8, legend: "out" }] },
        { type: "line", title: "CPU", unit: "%", w: 6, h: 1, queries: [
          { device: "$device", path: "/system/cpus/cpu[index=*]/state/total/instant", fn: "avg", legend: "cpu {index}" }] },
        { type: "area", title: "memory used", unit: "B", w: 4, h: 1, queries: [
          { device: "$device", path: "/system/memory/state/utilized", fn: "avg", legend: "used" }] },
        { type: "line", title: "temperature", unit: "°C", w: 4, h: 1, queries: [
          { device: "$device", path: "/components/component[name=*]/state/temperature/instant", fn: "avg", legend: "{name}" }] },
        { type: "bar", title: "errors and discards of $interface", unit: "/s", w: 4, h: 1, queries: [
          { device: "$device", path: `${IF}/in-errors`, fn: "rate", legend: "in errors" },
          { device: "$device", path: `${IF}/out-errors`, fn: "rate", legend: "out errors" },
          { device: "$device", path: `${IF}/in-discards`, fn: "rate", legend: "in discards" },
          { device: "$device", path: `${IF}/out-discards`, fn: "rate", legend: "out discards" }] },
        { type: "topn", title: "top interfaces by traffic in", unit: "bit/s", w: 6, h: 1, top: 10, queries: [
          { device: "$device", path: `${ALL_IF}/in-octets`, fn: "rate", scale: 8, legend: "{name}" }] },
        { type: "table", title: "traffic in per interface", unit: "bit/s", w: 6, h: 1, queries: [
          { device: "$device", path: `${ALL_IF}/in-octets`, fn: "rate", scale: 8, legend: "{name}" }] },
      ],
    },
  },
};
