"""The Prometheus remote-write 1.0 messages, built with the protobuf runtime (no generated code to keep in step
with the installed protobuf version). The same messages as prometheus/prompb, field numbers included:

    syntax = "proto3";
    package prometheus;
    message WriteRequest { repeated TimeSeries timeseries = 1; reserved 2; repeated MetricMetadata metadata = 3; }
    message TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }
    message Label { string name = 1; string value = 2; }
    message Sample { double value = 1; int64 timestamp = 2; }   // timestamp: milliseconds since the epoch
    message MetricMetadata { MetricType type = 1; string metric_family_name = 2; string help = 4; string unit = 5; }
    enum MetricType { UNKNOWN = 0; COUNTER = 1; GAUGE = 2; … }
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _build() -> descriptor_pool.DescriptorPool:
    fd = descriptor_pb2.FileDescriptorProto(name="swtel/prompb/remote.proto", package="prometheus", syntax="proto3")

    def msg(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        m = fd.message_type.add(name=name)
        for fname, num, ftype, label, tname in fields:
            f = m.field.add(name=fname, number=num, type=ftype, label=label)
            if tname:
                f.type_name = tname

    rep, opt = _F.LABEL_REPEATED, _F.LABEL_OPTIONAL
    msg("Label", ("name", 1, _F.TYPE_STRING, opt, ""), ("value", 2, _F.TYPE_STRING, opt, ""))
    msg("Sample", ("value", 1, _F.TYPE_DOUBLE, opt, ""), ("timestamp", 2, _F.TYPE_INT64, opt, ""))
    msg("TimeSeries", ("labels", 1, _F.TYPE_MESSAGE, rep, ".prometheus.Label"),
        ("samples", 2, _F.TYPE_MESSAGE, rep, ".prometheus.Sample"))
    enum = fd.enum_type.add(name="MetricType")
    for i, n in enumerate(("UNKNOWN", "COUNTER", "GAUGE", "HISTOGRAM", "GAUGEHISTOGRAM", "SUMMARY", "INFO",
                           "STATESET")):
        enum.value.add(name=n, number=i)
    msg("MetricMetadata", ("type", 1, _F.TYPE_ENUM, opt, ".prometheus.MetricType"),
        ("metric_family_name", 2, _F.TYPE_STRING, opt, ""), ("help", 4, _F.TYPE_STRING, opt, ""),
        ("unit", 5, _F.TYPE_STRING, opt, ""))
    msg("WriteRequest", ("timeseries", 1, _F.TYPE_MESSAGE, rep, ".prometheus.TimeSeries"),
        ("metadata", 3, _F.TYPE_MESSAGE, rep, ".prometheus.MetricMetadata"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return pool


_POOL = _build()
WriteRequest = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("prometheus.WriteRequest"))
TimeSeries = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("prometheus.TimeSeries"))
COUNTER, GAUGE, INFO = 1, 2, 6
