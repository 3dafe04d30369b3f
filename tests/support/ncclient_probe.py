"""Run in its own process (ncclient brings paramiko, whose import-time deprecation warnings must not
meet the tests' warnings-as-errors): connect ncclient, an independent NETCONF client, to a NETCONF server,
read capabilities, interfaces (ietf-interfaces, subtree filter) and the running config, print JSON.

    python ncclient_probe.py PORT USERNAME PASSWORD      (exit 3: ncclient is not installed)
"""

from __future__ import annotations

import json
import sys
import warnings

warnings.simplefilter("ignore")  # paramiko/cryptography deprecations are not what this probe checks
try:
    from lxml import etree
    from ncclient import manager
except ImportError:
    print("ncclient is not installed: pip install 'ncclient>=0.6.15,<0.7' (the test extra has it)", file=sys.stderr)
    sys.exit(3)

NS_IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"


def main() -> None:
    port, username, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    with manager.connect(host="127.0.0.1", port=port, username=username, password=password,
                         hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=20) as m:
        out: dict = {"capabilities": sorted(m.server_capabilities),
                     "framing": "1.1" if m._session._base == 2 else "1.0"}  # NetconfBase.BASE_11
        reply = m.get(filter=("subtree", f'<interfaces xmlns="{NS_IF}"><interface><name/><statistics/>'
                                         "</interface></interfaces>"))
        root = etree.fromstring(reply.data_xml.encode())
        itfs = {}
        for itf in root.iter(f"{{{NS_IF}}}interface"):
            name = itf.findtext(f"{{{NS_IF}}}name")
            stats = itf.find(f"{{{NS_IF}}}statistics")
            if name and stats is not None:
                itfs[name] = {etree.QName(c).localname: int(c.text) for c in stats
                              if (c.text or "").strip().isdigit()}
        out["interfaces"] = itfs
        config = m.get_config(source="running").data_xml
        out["config"] = config
        out["hostname_in_config"] = "<hostname>" in config or ":hostname>" in config
    print(json.dumps(out))


if __name__ == "__main__":
    main()
