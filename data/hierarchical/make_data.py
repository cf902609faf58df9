"""Generate the hierarchical example's data: construction-site record sentences over a 3-level tree.

    python data/hierarchical/make_data.py

Writes ``train.txt``, ``dev.txt`` and ``test.txt`` (``text<TAB>path``) next to this script, and the
same rows as ``train.jsonl``, ``dev.jsonl`` and ``test.jsonl`` (``{"text", "label", "domain"}``): the
data source a record was filed in (成本数据, 质量验收, 进度计划), mostly the one of its top level
(acceptance records, 进度##节点##验收, in 质量验收), and for ``CROSS_FILED`` of the rows another one.
``corpus/site_logs.jsonl`` is unlabelled domain text for ``fewshot-pretrain``, in the format PaddleNLP's
pretraining data preparation starts from (``{"text": ...}`` per document): ``CORPUS_DOCUMENTS`` site
logs of 3–6 records each, drawn from the same templates but sharing no text with the splits. Every
node below has sentence templates; slots (``{loc}``, ``{comp}``, ...) are filled from ``SLOTS``
with a fixed seed, so the files are reproducible. Leaf nodes (level 3) get ``LEAF_COUNTS`` rows
per split; level-2 nodes get ``GENERAL_COUNTS`` rows of general records that belong to no leaf
(their gold path stops at level 2). A text never appears twice, so no text is shared between splits.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

HERE = Path(__file__).resolve().parent
SEED = 20240521
SPLITS = ("train", "dev", "test")
LEAF_COUNTS = (12, 5, 8)
GENERAL_COUNTS = (4, 2, 3)
DOMAINS = ("成本数据", "质量验收", "进度计划")
HOME_DOMAIN = {"成本": "成本数据", "质量": "质量验收", "进度": "进度计划", "进度##节点##验收": "质量验收"}
"""The data source a record of a node is filed in: the longest listed prefix of its path decides."""
CROSS_FILED = 0.2
CORPUS_DOCUMENTS = 600

SLOTS: Dict[str, Tuple[str, ...]] = {
    "loc": ("一号楼", "二号楼", "三号楼", "五号楼", "地下室", "裙楼", "主楼", "东区", "西区", "北区"),
    "floor": ("一层", "二层", "三层", "五层", "六层", "八层", "十层", "顶层"),
    "comp": ("楼板", "剪力墙", "框架柱", "框架梁", "楼梯", "基础底板", "外墙", "顶板"),
    "n": ("两", "三", "四", "五", "六", "七", "十"),
    "mat": ("钢材", "水泥", "砂石", "木方", "模板", "砖块", "电缆", "防水卷材"),
    "team": ("木工", "钢筋工", "瓦工", "架子工", "电工", "水暖工", "油漆工"),
}

TEMPLATES: Dict[str, Tuple[str, ...]] = {
    "质量##混凝土##养护": (
        "{loc}{floor}{comp}浇筑后未及时覆盖洒水",
        "{loc}{comp}养护期内表面出现干缩裂纹",
        "冬季施工{loc}{comp}保温措施不到位",
        "{loc}{floor}楼板养护不足{n}天就上人堆料",
        "{loc}{comp}拆模后未覆盖薄膜，养护记录缺失",
        "检查{loc}{floor}{comp}养护情况，浇水次数不够",
        "{loc}{comp}表面发白起砂，养护不当",
    ),
    "质量##混凝土##浇筑": (
        "{loc}{floor}{comp}振捣不密实，出现蜂窝麻面",
        "{loc}{comp}拆模后发现露筋和孔洞",
        "{loc}{comp}混凝土离析，现场私自加水被制止",
        "{loc}{floor}{comp}浇筑中断{n}小时出现冷缝",
        "{loc}{comp}浇筑高度过大，未分层下料",
        "{loc}{floor}{comp}浇筑时漏浆，模板加固不够",
    ),
    "质量##混凝土": (
        "{loc}{floor}{comp}混凝土试块已送检",
        "{loc}{comp}混凝土回弹检测结果符合设计要求",
        "{loc}{comp}混凝土配合比已报监理审批",
        "{loc}{floor}{comp}混凝土强度报告已归档",
    ),
    "质量##钢筋##绑扎": (
        "{loc}{floor}{comp}钢筋间距偏大，绑扎不牢",
        "{loc}{comp}箍筋漏扎{n}处",
        "{loc}{floor}{comp}钢筋保护层垫块缺失",
        "{loc}{floor}板筋绑扎完成后负筋被踩塌",
        "{loc}{comp}钢筋搭接长度不足",
        "{loc}{floor}{comp}绑扎丝头未朝内",
    ),
    "质量##钢筋##焊接": (
        "{loc}{comp}钢筋焊接接头有夹渣和气孔",
        "{loc}{floor}电渣压力焊接头偏心，需返工",
        "{loc}{comp}焊工无证上岗，焊缝质量不合格",
        "{loc}钢筋对焊试件抽检{n}组不合格",
        "{loc}{floor}{comp}焊接长度不够，焊缝不饱满",
        "{loc}{comp}焊接接头未敲除焊渣",
    ),
    "质量##钢筋": (
        "{loc}钢筋原材进场复试报告合格",
        "{loc}{floor}钢筋原材见证取样{n}组",
        "{loc}{comp}钢筋规格与图纸核对一致",
        "{loc}钢筋进场{n}车，质量证明文件齐全",
    ),
    "成本##材料##价格": (
        "本月{mat}价格上涨{n}成，材料费超出预算",
        "{mat}单价上调，需办理价差签证",
        "{mat}市场价格波动大，建议提前锁价采购",
        "供应商通知{mat}下月涨价",
        "{mat}采购价高于投标报价，成本压力增加",
        "{mat}信息价下调，可申请调减合同价",
    ),
    "成本##材料##损耗": (
        "{loc}{mat}堆放不当，损耗严重",
        "{loc}{mat}浪费较大，超出定额损耗",
        "{loc}{mat}被雨水浸泡报废{n}车",
        "{loc}{mat}切割余料未回收利用",
        "月底盘点{loc}{mat}亏量较大，损耗超标",
        "{loc}{mat}运输途中破损{n}成",
    ),
    "成本##材料": (
        "{loc}{mat}进场数量与结算单核对一致",
        "编制{loc}本月{mat}采购计划",
        "{loc}{mat}供货合同已签订",
        "{mat}进场{n}车，已办理入库",
    ),
    "成本##人工##加班": (
        "为赶工期{loc}{team}班组连续夜间作业",
        "{loc}{floor}浇筑延续到凌晨，产生加班费",
        "周末{loc}{n}名{team}加班，需核算费用",
        "节假日{loc}加班施工，人工费增加",
        "{loc}{team}夜间施工加点，需办理加班签证",
        "{loc}{team}每天延长工时{n}小时赶进度",
    ),
    "成本##人工##工资": (
        "{team}班组工资拖欠{n}天未发",
        "{team}日工单价上涨，人工成本增加",
        "核对{team}劳务工资表，发现冒领",
        "{team}劳务费结算单已签字",
        "{team}本月工资已通过专户足额发放",
        "{team}要求提高计件单价",
    ),
    "成本##人工": (
        "{loc}{team}班组进场{n}十人，已登记实名制",
        "本周{loc}{team}用工统计表已上报",
        "{loc}{team}劳务分包合同已签订",
        "{loc}{team}人数减少{n}人",
    ),
    "进度##延误##天气": (
        "连续{n}天降雨，{loc}土方开挖暂停",
        "大风预警，塔吊停止吊装，{loc}进度滞后",
        "高温天气中午停工，{loc}{floor}浇筑推迟",
        "暴雨导致基坑积水，{loc}施工延误{n}天",
        "寒潮来袭，{loc}{comp}浇筑推迟到下周",
        "大雾天气{loc}吊装作业暂停{n}小时",
    ),
    "进度##延误##停工": (
        "{loc}因图纸变更停工待图{n}天",
        "材料未到场，{loc}{floor}停工待料",
        "安全检查整改，{loc}全面停工",
        "停电导致{loc}{floor}施工中断",
        "劳务纠纷，{loc}{team}班组罢工{n}天",
        "{loc}接到环保通知停工{n}天",
    ),
    "进度##延误": (
        "{loc}主体结构进度滞后计划{n}天",
        "本周{loc}实际完成量低于计划",
        "{loc}{floor}施工进度落后，需要调整计划",
        "{loc}工期已拖后{n}天",
    ),
    "进度##节点##完工": (
        "{loc}主体结构封顶",
        "{loc}{floor}结构施工完成，比计划提前{n}天",
        "{loc}砌体工程全部完成",
        "{loc}外墙脚手架拆除完毕",
        "{loc}{floor}顶板浇筑完成，进入下一层施工",
        "{loc}{floor}抹灰工程完工",
    ),
    "进度##节点##验收": (
        "{loc}基础分部工程通过验收",
        "监理组织{loc}{floor}主体结构验收",
        "{loc}地基验槽完成，各方签字确认",
        "{loc}{floor}节能分项验收合格",
        "建设单位约定下周进行{loc}竣工预验收",
        "{loc}{floor}验收发现问题{n}项，限期整改",
    ),
    "进度##节点": (
        "更新{loc}里程碑节点计划",
        "本月{loc}关键节点完成情况汇总",
        "{loc}下月节点目标已下达",
        "{loc}节点考核结果已通报",
    ),
}

_SLOT = re.compile(r"\{(\w+)\}")


def fill(template: str, rng: random.Random) -> str:
    """Replace each ``{slot}`` of ``template`` with a random filler from ``SLOTS``."""
    return _SLOT.sub(lambda m: rng.choice(SLOTS[m.group(1)]), template)


def is_leaf(path: str) -> bool:
    """True for level-3 nodes: no other templated node lies below them."""
    return not any(other.startswith(path + "##") for other in TEMPLATES)


def sample_texts(path: str, count: int, rng: random.Random, taken: set) -> List[str]:
    """``count`` new texts for ``path``, cycling through its templates; none already in ``taken``."""
    texts: List[str] = []
    templates = TEMPLATES[path]
    attempts = 0
    while len(texts) < count:
        attempts += 1
        if attempts > 1000 * count:
            raise RuntimeError(f"{path}: could not draw {count} distinct texts")
        text = fill(templates[len(texts) % len(templates)], rng)
        if text not in taken:
            taken.add(text)
            texts.append(text)
    return texts


def make_splits(seed: int = SEED) -> Dict[str, List[Tuple[str, str]]]:
    """``{"train": [(text, path), ...], "dev": ..., "test": ...}``, each split shuffled."""
    rng = random.Random(seed)
    taken: set = set()
    splits: Dict[str, List[Tuple[str, str]]] = {name: [] for name in SPLITS}
    for path in TEMPLATES:
        counts: Sequence[int] = LEAF_COUNTS if is_leaf(path) else GENERAL_COUNTS
        texts = sample_texts(path, sum(counts), rng, taken)
        rng.shuffle(texts)
        start = 0
        for name, count in zip(SPLITS, counts):
            splits[name].extend((text, path) for text in texts[start : start + count])
            start += count
    for rows in splits.values():
        rng.shuffle(rows)
    return splits


def home_domain(path: str) -> str:
    """The domain of ``HOME_DOMAIN``'s longest key that is ``path`` or one of its ancestors."""
    keys = [k for k in HOME_DOMAIN if path == k or path.startswith(k + "##")]
    return HOME_DOMAIN[max(keys, key=len)]


def assign_domains(splits: Dict[str, List[Tuple[str, str]]], seed: int = SEED) -> Dict[str, List[Tuple[str, str, str]]]:
    """``(text, path, domain)`` rows: the home domain, or with probability ``CROSS_FILED`` another one
    (drawn from its own generator, so the ``.txt`` files do not depend on it)."""
    rng = random.Random(seed + 1)
    out: Dict[str, List[Tuple[str, str, str]]] = {}
    for name, rows in splits.items():
        out[name] = []
        for text, path in rows:
            domain = home_domain(path)
            if rng.random() < CROSS_FILED:
                domain = rng.choice([d for d in DOMAINS if d != domain])
            out[name].append((text, path, domain))
    return out


def make_corpus(splits: Dict[str, List[Tuple[str, str]]], count: int = CORPUS_DOCUMENTS,
                seed: int = SEED) -> List[str]:
    """``count`` site-log documents (records joined by 。), no record equal to a text of ``splits``."""
    rng = random.Random(seed + 2)
    taken = {text for rows in splits.values() for text, _ in rows}
    paths = list(TEMPLATES)
    documents = []
    for _ in range(count):
        records: List[str] = []
        size = rng.randint(3, 6)
        while len(records) < size:
            text = fill(rng.choice(TEMPLATES[rng.choice(paths)]), rng)
            if text not in taken:
                records.append(text)
        documents.append("。".join(records) + "。")
    return documents


def write_splits(splits: Dict[str, List[Tuple[str, str]]], directory: Path = HERE) -> None:
    """Write ``<split>.txt`` files of ``text<TAB>path`` lines and ``<split>.jsonl`` files with the domain."""
    for name, rows in splits.items():
        content = "".join(f"{text}\t{path}\n" for text, path in rows)
        (directory / f"{name}.txt").write_text(content, encoding="utf-8")
    for name, rows in assign_domains(splits).items():
        lines = (json.dumps({"text": t, "label": p, "domain": d}, ensure_ascii=False) + "\n" for t, p, d in rows)
        (directory / f"{name}.jsonl").write_text("".join(lines), encoding="utf-8")
    (directory / "corpus").mkdir(exist_ok=True)
    documents = "".join(json.dumps({"text": doc}, ensure_ascii=False) + "\n" for doc in make_corpus(splits))
    (directory / "corpus" / "site_logs.jsonl").write_text(documents, encoding="utf-8")


def main() -> None:
    splits = make_splits()
    write_splits(splits)
    print(", ".join(f"{name}: {len(rows)} rows" for name, rows in splits.items()))


if __name__ == "__main__":
    main()
