"""Generate the multi-label example's data: site safety/quality inspection records with defect tags.

    python data/multilabel/make_data.py

Writes ``train.txt``, ``dev.txt`` and ``test.txt`` (``text<TAB>label1,label2``) next to this script.
A record is a place (``{loc}{floor}``) followed by one to three findings of different tags and an
optional closing remark; a finding is one of its tag's templates with slots filled from ``SLOTS``.
Everything is drawn with a fixed seed, so the files are reproducible; a text never appears twice,
so no text is shared between splits.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Dict, List, Tuple

HERE = Path(__file__).resolve().parent
SEED = 20240522
SPLIT_SIZES = (("train", 160), ("dev", 64), ("test", 110))
TAG_COUNTS = (1, 1, 1, 2, 2, 2, 3)
"""Number of tags of a record, drawn uniformly from this tuple (3/7 one tag, 3/7 two, 1/7 three)."""

SLOTS: Dict[str, Tuple[str, ...]] = {
    "loc": ("一号楼", "二号楼", "三号楼", "五号楼", "地下室", "裙楼", "主楼", "东区", "西区", "北区"),
    "floor": ("", "一层", "二层", "三层", "五层", "八层", "十层", "顶层"),
    "wet": ("外墙", "卫生间楼板", "屋面", "外窗框周边", "后浇带", "水池底板", "阳台"),
    "leak": ("渗水", "渗漏", "有渗水痕迹", "雨后漏水", "有明显湿渍", "防水层破损渗水"),
    "part": ("楼板", "填充墙", "剪力墙", "梁柱节点", "外墙抹灰层", "地坪", "楼梯"),
    "crack": ("出现裂缝", "有贯通裂缝", "开裂", "出现多条裂纹", "有斜向裂缝"),
    "box": ("配电箱", "开关箱", "临时电缆", "照明线路", "电焊机"),
    "power": ("未上锁", "无漏电保护", "私拉乱接", "拖地浸水", "绝缘层老化", "未接地"),
    "fire": ("灭火器过期", "消防通道被材料堵塞", "动火作业无看火人", "易燃材料堆放在宿舍旁", "消防水管无水", "动火未办审批"),
    "edge": ("临边防护栏杆缺失", "电梯井口防护门被拆", "楼板洞口未覆盖", "脚手架踏板未满铺", "安全网破损"),
    "worker": ("工人高处作业未系安全带", "登高作业无人监护", "外架作业人员未挂安全带"),
    "dust": ("裸土未覆盖", "车辆出场未冲洗", "渣土车未密闭运输", "未洒水降尘", "切割作业粉尘大", "雾炮机未开启"),
    "end": ("", "", "，已下发整改通知", "，要求限期整改", "，责任人已签字", "，已拍照留存"),
}

FINDINGS: Dict[str, Tuple[str, ...]] = {
    "渗漏": ("{wet}{leak}",),
    "开裂": ("{part}{crack}",),
    "用电": ("{box}{power}",),
    "消防": ("{fire}",),
    "高处": ("{edge}", "{worker}"),
    "扬尘": ("{dust}",),
}
"""Finding templates of each tag; the tag names are the labels of ``label.txt``."""

_SLOT = re.compile(r"\{(\w+)\}")


def fill(template: str, rng: random.Random) -> str:
    """Replace each ``{slot}`` of ``template`` with a random filler from ``SLOTS``."""
    return _SLOT.sub(lambda m: rng.choice(SLOTS[m.group(1)]), template)


def make_record(rng: random.Random) -> Tuple[str, List[str]]:
    """One inspection record and its tags, in ``FINDINGS`` order."""
    tags = rng.sample(list(FINDINGS), rng.choice(TAG_COUNTS))
    findings = [fill(rng.choice(FINDINGS[tag]), rng) for tag in tags]
    text = fill("{loc}{floor}", rng) + "，".join(findings) + fill("{end}", rng)
    return text, [tag for tag in FINDINGS if tag in tags]


def make_splits(seed: int = SEED) -> Dict[str, List[Tuple[str, str]]]:
    """``{"train": [(text, "tag1,tag2"), ...], "dev": ..., "test": ...}`` of distinct texts."""
    rng = random.Random(seed)
    seen: set = set()
    splits: Dict[str, List[Tuple[str, str]]] = {}
    for name, size in SPLIT_SIZES:
        rows: List[Tuple[str, str]] = []
        while len(rows) < size:
            text, tags = make_record(rng)
            if text not in seen:
                seen.add(text)
                rows.append((text, ",".join(tags)))
        splits[name] = rows
    return splits


def write_splits(splits: Dict[str, List[Tuple[str, str]]], directory: Path = HERE) -> None:
    """Write ``<split>.txt`` files of ``text<TAB>labels`` lines."""
    for name, rows in splits.items():
        content = "".join(f"{text}\t{labels}\n" for text, labels in rows)
        (directory / f"{name}.txt").write_text(content, encoding="utf-8")


def main() -> None:
    splits = make_splits()
    write_splits(splits)
    print(", ".join(f"{name}: {len(rows)} rows" for name, rows in splits.items()))


if __name__ == "__main__":
    main()
