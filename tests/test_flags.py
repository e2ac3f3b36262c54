"""Compliance and vulnerability flags: the samples against their scripts, the rulebook's language (negation,
sound-alike words, context, call metadata), and what happens to rulebooks that are edited or broken."""

from __future__ import annotations

import json

import pytest

from analyzer import classify, flags
from analyzer.batch import count_calls_per_day, read_manifest
from analyzer.cli import main
from analyzer.result import Turn, Word

from conftest import ONEDNN_OUTPUT, LAYOUTS, SAMPLES, truth

# what the scripts' acts mean as flag categories (urgency, empathy, distress, anger … are not flagged)
CATEGORY_OF_ACT = {"threat_legal": "threat", "threat_third_party": "third_party", "insult": "insult",
                   "self_harm": "self_harm", "hardship": "hardship"}
VIOLATIONS = {"threat", "third_party", "insult", "self_harm"}


def scripted_categories(call_id: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for turn in truth(call_id)["turns"]:
        for act in turn["acts"]:
            if act in CATEGORY_OF_ACT:
                found.setdefault(CATEGORY_OF_ACT[act], []).append(turn)
    return found


@pytest.mark.parametrize(("call_id", "relaid"), LAYOUTS)
def test_each_sample_gets_the_categories_its_script_says(results, call_id, relaid, request):
    if (call_id, relaid) == ("call_01_compliant", True):
        request.applymarker(ONEDNN_OUTPUT)
    result = results[call_id]
    assert {flag.category for flag in result.flags} == set(scripted_categories(call_id)), result.transcript()


@pytest.mark.parametrize(("call_id", "relaid"), LAYOUTS)
def test_every_scripted_violation_is_flagged_within_its_turn(results, call_id, relaid):
    result = results[call_id]
    for category, turns in scripted_categories(call_id).items():
        if category not in VIOLATIONS:
            continue
        for turn in turns:
            assert any(flag.category == category and flag.start < turn["end"] and turn["start"] < flag.end
                       for flag in result.flags), (category, turn["text"], result.transcript())


@pytest.mark.parametrize("relaid", [False, True], ids=["as-recorded", "relaid"])
def test_the_compliant_call_has_no_collector_violation(results, relaid):
    result = results["call_01_compliant"]
    assert not [flag for flag in result.flags if flag.role == "collector"]
    assert result.review_priority in ("none", "low")


def test_flags_carry_what_a_reviewer_needs(sample_results):
    result = sample_results["call_02_abusive"]
    rulebook = flags.load()
    for flag in result.flags:
        turn = result.turns[flag.turn]
        assert flag.rule_version == rulebook.version and flag.speaker == turn.speaker and flag.role == turn.role
        assert turn.start - 0.01 <= flag.start < flag.end <= turn.end + 0.01
        assert flag.evidence and flag.evidence in turn.text and 0 < flag.confidence <= 1
    assert result.review_priority == "high" and result.risk >= 0.9
    assert sample_results["call_03_distress"].review_priority == "urgent"  # self-harm comes first
    assert result.provenance.models["rulebook"]["version"] == rulebook.version


def one_turn(text: str, role: str = "collector", speaker: str = "S1", start: float = 0.0) -> Turn:
    return Turn(start, start + 4.0, speaker, role, text, [Word(start, start + 4.0, text, 1.0)])


@pytest.mark.parametrize(("text", "role", "category"), [
    ("不还钱就起诉你，让你倾家荡产", "collector", "threat"),
    ("信不信让警查上门抓你", "collector", "threat"),               # 警察 as Whisper writes it on a phone line
    ("你这个费物", "collector", "insult"),                          # 废物
    ("今天就给你老婆和单位领导打电话", "collector", "third_party"),
    ("有时候觉得活着也没什么意思，不如死了算了", "borrower", "self_harm"),
    ("三个月前被公司裁员了，一分钱收入都没有", "borrower", "hardship"),
    ("我连后事都安排好了，活着还有什么意思", "borrower", "self_harm"),
    ("你老婆孩子出门最好小心点", "collector", "third_party"),
    ("我不是开玩笑的，我真的不想活了", "borrower", "self_harm"),   # a negated retraction takes nothing back
    ("钱可以晚两天，不过你去死吧", "collector", "insult"),          # 不过 is "but", not a negation
    ("你以为我们是吓唬你的吗？警察马上就到", "collector", "threat"),   # a question, not the retraction 那是吓唬你的
    ("你个沙比，钱到底什么时候还", "collector", "insult"),             # 傻逼 as Whisper may write it
    ("你闺女的电话我有，我现在就打给她", "collector", "third_party"),
    ("你房东我认识，我就跟他说你欠钱不还", "collector", "third_party"),  # telling a named third party
    ("我已经写好绝笔了，你们别再打了", "borrower", "self_harm"),
    ("老想着找根绳子把自己挂了", "borrower", "self_harm"),
    ("过几天我人都没了，你们找谁要去", "borrower", "self_harm"),
    ("你敢跑路，腿给你打断", "collector", "threat"),
    ("猪都比你有脑子", "collector", "insult"),
    ("下午我们去你老丈人家坐坐", "collector", "third_party"),
    ("你这笔账我们已经交给经侦了", "collector", "threat"),
    ("我们已经安排人过去了，你自己看着办", "collector", "threat"),
    ("你这人脸皮可真够厚的", "collector", "insult"),
    ("安眠药我刚吃了一整瓶", "borrower", "self_harm"),
    ("我们那儿遭了水灾，地里啥也没剩下", "borrower", "hardship"),
    ("我妈上个月去世了，办完事一分钱都没了", "borrower", "hardship"),
    ("有时候真想吃药跟她一起走了", "borrower", "self_harm"),
    ("一分钱都没有，我还活着干嘛", "borrower", "self_harm"),
    ("病成这样还拖累家里，不如早点走", "borrower", "self_harm"),
    ("绳子我都准备好了", "borrower", "self_harm"),
    ("我被网上刷单的骗光了积蓄", "borrower", "hardship"),
    ("我们的人已经出发了，你在家等着", "collector", "threat"),
    ("再不还，房子车子全给您拍了", "collector", "threat"),
    ("今天就到您家门口坐坐", "collector", "threat"),
    ("你的担保人我们已经联系过了", "collector", "third_party"),
    ("我在你们家族群里把这事全抖出来", "collector", "third_party"),
    ("我刚问过你隔壁的邻居了", "collector", "third_party"),
    ("我们晚上过去，跟你爸妈好好聊聊", "collector", "third_party"),
    ("明天去你厂里跟你们老板说说", "collector", "third_party"),
    ("你个骗子，还撒谎", "collector", "insult"),                    # an accusation of lying takes nothing back
    ("老赖，你这样是不对的", "collector", "insult"),
    ("我不想再拖累爸妈了，还是早点走吧", "borrower", "self_harm"),     # 不想 here does not deny the farewell
    ("真希望哪天出个意外死了才好", "borrower", "self_harm"),
    ("我们上周已经跟您爱人沟通过这笔欠款了", "collector", "third_party"),
    ("你儿子在哪上学我们都知道，他万一出点意外可别怪我", "collector", "third_party"),
    ("明天叫几个人尚门，给你点颜色看看", "collector", "threat"),
    ("你晚上最好别一个人出门", "collector", "threat"),
    ("我得了重病治不起，干脆死了算了", "borrower", "self_harm"),
    ("想着买份意外险，然后去撞车", "borrower", "self_harm"),
    ("你这个没脸没皮的，钱呢", "collector", "insult"),
    ("你就是个渣男，借钱不还", "collector", "insult"),
    ("你爸妈那边我们已经派人过去了", "collector", "third_party"),
    ("你表哥的电话我已经打了", "collector", "third_party"),
    ("你们班主任我认识，让他在家长会上讲讲你", "collector", "third_party"),
    ("钱不到位我们就报警", "collector", "threat"),
    ("派出所那边已经给你备案了", "collector", "threat"),
    ("你女儿在哪上学我知道，明天我们的人去接她", "collector", "threat"),
    ("再挂电话，让你出门就出车祸", "collector", "threat"),
    ("明天我们就去你岳父家", "collector", "third_party"),
    ("你们单位领导都得知道你欠钱不还", "collector", "third_party"),
    ("你楼下物业我已经打过招呼了", "collector", "third_party"),
    ("再拖着，让你以后走路都扶着墙", "collector", "threat"),
    ("经侦那边已经给你立案了", "collector", "threat"),
    ("你要是进去了，孩子谁管？", "collector", "threat"),
    ("借钱时叫爷爷，还钱时装孙子", "collector", "insult"),
    ("反正我也不打算活了", "borrower", "self_harm"),
    ("我真系唔想再活落去", "borrower", "self_harm"),
    ("活着没得意思，今晚就去跳长江", "borrower", "self_harm"),
    ("我想开着车冲到河里去", "borrower", "self_harm"),
    ("塘里的鱼全死光了，一年白干", "borrower", "hardship"),
    ("店被强拆了，一分钱补偿没有", "borrower", "hardship"),
    ("房贷也还不上，活着没意四", "borrower", "self_harm"),           # a numeral standing for 思, not in a number
    ("明天我们三个人上门，你那些家具怎么处理就不好说了", "collector", "threat"),
    ("派出所的人过两天会找你谈", "collector", "threat"),
    ("等着被叫去问话吧", "collector", "threat"),
    ("再不还，直接走刑是程序", "collector", "threat"),                 # 刑事 as Whisper writes it
    ("下周去你们公司楼下拉横幅", "collector", "third_party"),
    ("看你那怂样，电话都不敢接", "collector", "insult"),
    ("你这种蓄生也配借钱", "collector", "insult"),                     # 畜生 as Whisper writes it
    ("四十岁的人了还赖账，你说你活着图啥", "collector", "insult"),
    ("一个大男人天天躲着，丢人现眼", "collector", "insult"),
    ("烂货，钱都不还还好意思接电话", "collector", "insult"),
    ("厂子倒了，我已经在安排自己的后事了", "borrower", "self_harm"),
    ("我这病治不好，不如我自己早点走", "borrower", "self_harm"),
    ("腿废了，活着只会拖累老婆孩子", "borrower", "self_harm"),
    ("你们下回打来，接电话的就是殡仪馆了", "borrower", "self_harm"),
    ("天天在想要不要喝药算了", "borrower", "self_harm"),
    ("谁说我们不会起诉你？", "collector", "threat"),                 # a rhetorical denial of a denial affirms
    ("我已经跟你老婆说了，让她管管你", "collector", "third_party"),
    ("我刚和你领导通完电话", "collector", "third_party"),
    ("明天去你孩子学校门口发传单", "collector", "third_party"),
    ("你爸妈过年能不能安生，就看你了", "collector", "third_party"),
    ("我们的人下午就在你们小区门口", "collector", "threat"),
    ("你等着当着同事的面被带走吧", "collector", "threat"),
    ("四十岁了几千块都拿不出，这辈子白活了", "collector", "insult"),
    ("出门没带脑子吧你", "collector", "insult"),
    ("我这种人死了倒干净", "borrower", "self_harm"),
    ("我要是死了，家里还能拿点保险赔偿", "borrower", "self_harm"),
    ("银行卡和密码我都留给我妈了", "borrower", "self_harm"),
    ("当心我叫人来找你麻烦", "collector", "threat"),
    ("警车就停在你家楼下", "collector", "threat"),
    ("等法院把你家搬空", "collector", "threat"),
    ("我把你的事跟你舅舅说了", "collector", "third_party"),
    ("我们已经跟你们公司人事聊过了", "collector", "third_party"),
    ("去你们学院群里发一圈", "collector", "third_party"),
    ("照片贴满你们镇上", "collector", "third_party"),
    ("你爹妈真是白养你了", "collector", "insult"),
    ("说你是个人都抬举你了", "collector", "insult"),
    ("侬只赤佬", "collector", "insult"),
    ("我就想吃一把药睡过去算了", "borrower", "self_harm"),
    ("药我都攒好了，到时候一口吞了", "borrower", "self_harm"),
    ("绳子挂好在房梁上了", "borrower", "self_harm"),
    ("邻居都知道我不想活了", "borrower", "self_harm"),               # someone else named, then the speaker
    ("医生说要换肾，我哪来的钱", "borrower", "hardship"),
    ("工资欠了半年了", "borrower", "hardship"),
    ("躲来躲去，最后还不是被铐走", "collector", "threat"),           # 还不是 affirms: they will be
    ("到时候不就是坐牢吗", "collector", "threat"),
    ("之前那个不还钱的，现在在里面踩缝纫机", "collector", "threat"),
    ("再不还我让你横着出去", "collector", "threat"),
    ("你这就是诈骗，懂吗", "collector", "threat"),
    ("你哥那边我已经问过了", "collector", "third_party"),
    ("明天去你老家打听打听你的事", "collector", "third_party"),
    ("跟个耗子似的到处躲", "collector", "insult"),
    ("你这脸皮是越来越厚了", "collector", "insult"),
    ("别装孙子了，赶紧还钱", "collector", "insult"),                  # 别 does not deny the name
    ("炭我都买好了", "borrower", "self_harm"),
    ("今晚睡过去就别再醒了", "borrower", "self_harm"),
    ("我想好怎么走了", "borrower", "self_harm"),
    ("想跟他一块儿喝药走了", "borrower", "self_harm"),
    ("厂里工资拖了三个月", "borrower", "hardship"),
    ("鸡全病死了，一分钱没赚到", "borrower", "hardship"),
    ("我得了爱症", "borrower", "hardship"),                            # 癌症 misheard
    ("晚上出门记得看看身后", "collector", "threat"),
    ("你舅舅那边打过了，下一个就是你", "collector", "threat"),
    ("你不出面，后果你自己清楚", "collector", "threat"),
    ("传票直接寄到你们公司", "collector", "threat"),
    ("你老婆孩子住哪儿我们都清楚", "collector", "third_party"),
    ("你姐那我们去过了", "collector", "third_party"),
    ("你家里人我们已经找到了", "collector", "third_party"),
    ("我们开直播把你挂出去", "collector", "third_party"),
    ("在朋友圈给你宣传宣传", "collector", "third_party"),
    ("我哋同你屋企人倾下", "collector", "third_party"),                # Cantonese: talk it over with your family
    ("你公司老细我哋打过电话", "collector", "third_party"),            # Cantonese 老细, the boss
    ("你前女友我都联系了", "collector", "third_party"),
    ("老子喊人去你妈屋头坐起", "collector", "third_party"),            # Sichuan 屋头, home
    ("我坐在铁轨边上等车来", "borrower", "self_harm"),
    ("我一直在想怎么走得不那么痛苦", "borrower", "self_harm"),
    ("安眠药我都囤好了", "borrower", "self_harm"),
    ("我想从六楼上下去", "borrower", "self_harm"),
    ("干脆去另一个世界算了", "borrower", "self_harm"),
    ("牛全冻死了", "borrower", "hardship"),
    ("公司暴雷，工资全没了", "borrower", "hardship"),
    ("摊子被城管收走了", "borrower", "hardship"),
    ("派出所那边会协助把你带回来", "collector", "threat"),
    ("外访的同事会在您公司楼下等您", "collector", "threat"),
    ("到时候当面“解决”一下", "collector", "threat"),                  # the scare quotes say what is meant
    ("谈不拢你自己想想后果", "collector", "threat"),
    ("你还想让她安安稳稳上学吗", "collector", "threat"),
    ("再拖就让你上失信名单", "collector", "threat"),
    ("搵人去你老豆老母度坐下", "collector", "third_party"),          # Cantonese: your dad and mum's place
    ("我老公走了，我真想带着孩子一起去找他", "borrower", "self_harm"),
    ("工资推迟到下个月才发", "borrower", "hardship"),
    ("我们现在就在你们小区门口", "collector", "threat"),
    ("我们也有办法让公安来跟您讲", "collector", "threat"),
    ("明天我就去派出所报你诈骗", "collector", "threat"),
    ("哪天车窗被人砸了可别来问我", "collector", "threat"),
    ("再废话让你进派出所", "collector", "threat"),
    ("周末我们几个就上你家坐坐", "collector", "threat"),
    ("过两日有人上你屋企揾你", "collector", "threat"),
    ("你爸妈也在家吧，正好一起聊", "collector", "third_party"),
    ("你闺女在幼儿园，我们要找到她一点都不难", "collector", "third_party"),
    ("材料我们就交给你们公司人事了", "collector", "third_party"),
    ("鱼塘遭了灾，鱼全翻了肚皮", "borrower", "hardship"),
    ("你因住啊", "collector", "threat"),                                # Cantonese: watch out
    ("找不到你就找他，一家人谁都跑不了", "collector", "threat"),
    ("别为了这点钱落个残废", "collector", "threat"),
    ("明天我带人去厂里等你，看你往哪跑", "collector", "threat"),
    ("我叫人斩你", "collector", "threat"),
    ("我让你在医院躺半年", "collector", "threat"),
    ("明天我们就去他工地上找他", "collector", "third_party"),
    ("我就直接打您爱人电话了", "collector", "third_party"),
    ("俺就天天给老爷子打", "collector", "third_party"),
    ("你女儿在二年级三班，你要是不想她出什么事就还钱", "collector", "third_party"),
    ("侬欠铜钿的事体我已经讲拨侬公司老板听了", "collector", "third_party"),   # Wu: told your boss
    ("你个nt，赶紧还钱", "collector", "insult"),
    ("你家祖宗的脸都让你丢光了", "collector", "insult"),
    ("我现在没有任何收入，低保还在申请", "borrower", "hardship"),
    ("顺便看看你家那个老房子能抵多少债", "collector", "threat"),
    ("把你家大门给你堵了", "collector", "threat"),
    ("你儿子在哪个幼儿园我们都清楚", "collector", "threat"),
    ("外访组将前往您的户籍地址进行现场处置", "collector", "threat"),
    ("喊几个兄伙明天就来你屋头", "collector", "threat"),                  # Sichuan 兄伙, mates
    ("谁跟你说的？我们要报警了", "collector", "threat"),
    ("我们开着宣传车去你老家村里用喇叭喊", "collector", "third_party"),
    ("我们可以帮您联系您的直属领导", "collector", "third_party"),
    ("瞧你那熊样，这个赖子", "collector", "insult"),
    ("我得了白血病，我想紫砂", "borrower", "self_harm"),                    # 紫砂, slang for 自杀
    ("我想要不带着孩子一起走了算了", "borrower", "self_harm"),            # 要不, how about, denies nothing
    ("我也不想在这个世上待了", "borrower", "self_harm"),
    ("我想哪天就这么走进湖里算了", "borrower", "self_harm"),
    ("我那个小饭馆关门了", "borrower", "hardship"),
    ("我保证您下个月连家门都出不去", "collector", "threat"),
    ("你老婆单位的电话我有", "collector", "third_party"),
    ("你们村支书的电话我们已经拿到了", "collector", "third_party"),
    ("我而家就打去你阿爸阿妈度", "collector", "third_party"),           # Cantonese: calling your dad and mum
    ("恁这号人，二皮脸，没皮没臊的东西", "collector", "insult"),
    ("不行就报警说你诈骗，你自己选", "collector", "threat"),             # a false criminal report
    ("明儿我就把您这事儿写成告示，贴您那胡同口去", "collector", "third_party"),
    ("我们已经找到你上班的快递站了，当着你站长的面把话说清楚", "collector", "third_party"),
    ("不还钱俺们就去恁村里头找恁爹说道说道", "collector", "third_party"),   # Henan: your village, your dad
    ("我明天就去你闺女幼儿园门口等着", "collector", "third_party"),
    ("当着全公司的面把你带走", "collector", "threat"),
    ("侬哪能搿能不要面孔啊，借了铜钿不还", "collector", "insult"),     # Shanghainese 哪能, how come, denies nothing
    ("医生说我是肝癌晚期，我也不治了", "borrower", "hardship"),         # 说我是 reports, it does not ask back
    ("阿拉屋里厢老头子生毛病住医院，铜钿全部用光了", "borrower", "hardship"),
    ("外卖站把我开了，房东也赶我走", "borrower", "hardship"),
    ("我那个火锅店垮了，老婆也离了", "borrower", "hardship"),
    ("我在读研，没有工资", "borrower", "hardship"),
    ("俺实在扛不住了，想喝点药一睡不醒", "borrower", "self_harm"),
    ("不然我这边只能把你的案子交给当地派出所", "collector", "threat"),
    ("下周我们就直接报案，公安会上门带你走的", "collector", "threat"),
    ("会安排外访人员过去，跟您家里人讲清楚", "collector", "third_party"),
    ("主要是我们公司这半年一直拖工资，说是年底一起发", "borrower", "hardship"),
    ("我已经在网上查过哪种药吃了没痛苦了", "borrower", "self_harm"),
    ("阿姨，您儿子在我们平台借了三万八，逾期四个月了，您当妈的得替他把这钱还上", "collector", "third_party"),
    ("你是他老婆吧？你老公就是个骗子，借钱不还，你替他还了吧", "collector", "third_party"),
    ("阿姨您儿子欠我们钱一七三个月了您得帮他海上", "collector", "third_party"),   # 海上 for 还上
    ("你同事接的电话，我都跟他讲了", "collector", "third_party"),
    ("我会跟你通迅录里的人一个个说", "collector", "third_party"),
    ("再躲着，我们就派人上你渔船上去跟你算账", "collector", "threat"),
    ("我每周透析三次，钱早花光了，真想拔了管子一死百了", "borrower", "self_harm"),
    ("老伴瘫在床上，我七十多岁了哪来的钱，不如喝药跟他一起走", "borrower", "self_harm"),
    ("跑滴滴一天挣不到一百，车还被扣了", "borrower", "hardship"),
    ("我真想开着车冲下桥去", "borrower", "self_harm"),
    ("今年的茶叶全被霜冻坏了，借的钱还不上", "borrower", "hardship"),
    ("看看是你的腿硬还是我们兄弟的拳头硬", "collector", "threat"),
    ("被公司辞退以后天天躺平摆烂，现在连活下去的念头都没了", "borrower", "self_harm"),
    ("人间不值得，我想早点去那边找我奶奶", "borrower", "self_harm"),
    ("店也倒了，老婆也走了，我活着还有什么意思", "borrower", "hardship"),
    ("外卖罚款罚得我一天白干", "borrower", "hardship"),
    ("下午我们的人就去你媳妇上班的地方转转", "collector", "third_party"),
    ("再拖下去，你的逾期记录会同步给你单位", "collector", "third_party"),
    ("这个月请了病假，工资被扣了一大半", "borrower", "hardship"),
    ("工地老板一直不结账，我手里一分钱没有", "borrower", "hardship"),
    ("不说了，我这就去下面陪我妈", "borrower", "self_harm"),
    ("再逼我就吃安眼药", "borrower", "self_harm"),                  # 安眠药
    ("你不是说随便我们怎么弄吗那我们就把你的事发给你通迅录里的人", "collector", "third_party"),  # asks back, affirms
    ("我刚刚打到你公司前台，把你欠钱的事讲了", "collector", "third_party"),
    ("明天去你们厂门口等你，让你在全厂都出名", "collector", "third_party"),
    ("我们会派人前往您的工作单位核实情况", "collector", "third_party"),
])
def test_words_are_found_as_whisper_writes_them(text, role, category):
    found = flags.apply(flags.load(), [one_turn(text, role)], 4.0)
    assert category in {flag.category for flag in found}


@pytest.mark.parametrize(("text", "role"), [
    ("我们不会起诉您，您放心", "collector"),
    ("我们绝对不会联系您的家人", "collector"),
    ("没有人说您是骗子", "collector"),
    ("我们统计一下您的欠款", "collector"),                          # tong ji, but not 通缉
    ("放心，我不会想不开的", "borrower"),
    ("累死了，今天加班到十点", "borrower"),
    ("你们都是骗子", "borrower"),                                   # a borrower's abuse is not a collector violation
    ("您可以和家人商量一下还款计划", "collector"),
    ("跳楼价甩卖的那批货卖完了，钱马上到", "borrower"),                 # an exception phrase: a price, not a fall
    ("我不想活成我爸那样，所以肯定会还", "borrower"),
    ("我还没到活不下去的地步", "borrower"),
    ("所以十五号那期我肯定还不上", "borrower"),                      # 以十 is not 以死
    ("刚才信号不好，听不清", "collector"),                          # 号不 is not 号服 (不 is rarely read fou)
    ("我先进去是吧？好，我去排队", "borrower"),                      # 去是 is not 去死
    ("我忙得要死，你们一天打八遍", "borrower"),                      # an exception phrase vetoes the classifier too
    ("我们公司明确规定不允许上门催收", "collector"),
    ("我说不活了是开玩笑的，钱下周一就还", "borrower"),               # a retraction in the same clause
    ("我上次说想死，其实是喝多了，现在想通了", "borrower"),           # ... or in the next one
    ("剩下的八百下个月十号之前还清", "collector"),                  # 号之 is not 号子
    ("我们这边已经整理好了您的还款记录", "collector"),               # 经整 is not 经侦
    ("刚才那个“废物”是我口误，向您道歉", "collector"),               # a collector taking an insult back
    ("我刚才说什么跳河，你别当真啊，钱这周先还五百", "borrower"),
    ("之前有同事说要联系你家人，那是他个人违规，我们不会这样做", "collector"),  # a colleague's threat disowned
    ("我不是那种会想不开的人，钱我会还的", "borrower"),
    ("欠钱是民事纠纷，跟坐牢没关系", "collector"),                      # denied after the word
    ("真打官司法院也不会支持你们", "borrower"),                        # 司法 is not 死法
    ("我们不需要跟他联系，您转到自己账户就行", "collector"),
    ("“不想活了”是我的口头禅，我好着呢", "borrower"),
    ("我同事明天会把还款链接发给您", "collector"),                    # the collector's own colleague
    ("利滚利的算法我给您讲一下", "collector"),                         # 滚 inside a word
    ("我们不会报警，也没有权利这么做", "collector"),
    ("这种冒充平台的骗子短信您别信", "collector"),
    ("刚才不应该说您是老赖，我向您道歉", "collector"),
    ("您先别哭，到底出什么事了？", "collector"),                    # concern, not 出什么事 as a threat
    ("网上曝光您？不会的，那是违法的", "collector"),                 # denied in the next clause
    ("自杀？我才不会，为这点钱不值", "borrower"),
    ("听说有人被催得跳楼了，你放心，我不会的", "borrower"),
    ("路上堵死了，到家就转账", "borrower"),                         # the classifier heard self-harm in 堵死
    ("他说您是骗子，那是不对的", "collector"),
    ("逾期不构成犯罪，您不用担心", "collector"),
    ("我们不可能给您的朋友打电话", "collector"),
    ("有人说要去您单位闹？那不是我们公司的人", "collector"),
    ("我们公司同事帮一个客户办过停息，流程发给您", "collector"),
    ("我没说我不想活，我说的是最近压力大", "borrower"),
    ("借钱时求爷爷告奶奶的，这道理谁都知道", "collector"),          # 爷爷, 奶奶 in an idiom are no third party
    ("这事我跟你们死磕到底，利息必须退", "borrower"),                 # the classifier heard self-harm in 死磕
    ("我怎么可能想不开，我还有孩子要养", "borrower"),
    ("公司规定不许上门，也不许联系您家人", "collector"),
    ("冒充警察的诈骗电话很多，您小心", "collector"),
    ("逾期跟坐牢是两码事，您别担心", "collector"),
    ("我说的是工作不想干了，不是人不想活了", "borrower"),
    ("我没骂你废物，我说方案作废了", "collector"),
    ("我们单位规定晚上不能打电话，所以早点联系您", "collector"),
    ("有个客户上周结清了，您也可以申请", "collector"),
    ("大家都不容易，咱们说说还款的事", "collector"),
    ("我被骗去刷单，刷进去十二万", "borrower"),                       # 去十 is not 去死
    ("我打算跳槽到珠海，工资高点", "borrower"),                       # a job, not a river
    ("去死吧你们这些放贷的", "borrower"),                             # the borrower curses the collectors
    ("我还没傻到为这点钱寻死", "borrower"),
    ("想不开？不至于，我还有老娘要养", "borrower"),
    ("昨天我们楼有人跳楼了，警察来了好多", "borrower"),               # someone else
    ("我一个人上门，就是当面核对一下地址", "collector"),                # one caller, no people sent
    ("谁说我要跳楼了？我是说想搬到低一点的楼层", "borrower"),        # a rhetorical denial
    ("我什么时候说过要去您家了？", "collector"),
    ("我哪句话说您是老赖了？", "collector"),
    ("谁跟你说我们会报警的？这是民事纠纷", "collector"),
    ("你话我寻死？我唔会寻死", "borrower"),                           # Cantonese: 你话 (you say), 唔 (not)
    ("跳河这种事我这辈子都不会做", "borrower"),
    ("把您的事发到群里？这种想法我从来没有过", "collector"),
    ("上门？没有没有，我们根本不做上门催收", "collector"),
    ("莫担心，我莫得那种想不开的念头", "borrower"),                 # Sichuan: 莫得 (have no)
    ("我们怎么会把您的事发到网上呢", "collector"),
    ("我可没说我不想活了", "borrower"),
    ("电影里的主角最后跳楼了，看得我难受", "borrower"),             # someone else's jump
    ("新闻上说有个网红跳江了", "borrower"),
    ("我同事他爸去世了，我去帮忙", "borrower"),                     # 去世 is a death, not 去死 misheard
    ("逾期后会走诉讼，我跟您说明一下流程", "collector"),             # 下流 in 一下流程
    ("咱这可不兴上门闹事", "collector"),                              # northern 不兴 (not done)
    ("您这事构不成犯罪，没人会抓您", "collector"),
    ("您说我是骗子？没事，您可以打官方客服核实", "collector"),
    ("您舅舅去世了？节哀，那我过几天再打", "collector"),              # 去世 is not 去死 misheard
    ("我老公是交警，每天晒得跟炭似的", "borrower"),
    ("跳河？我可没那个胆子", "borrower"),
    ("有人冒充我们说要抓你，那百分之百是假的，我们不会那么干", "collector"),
    ("我看了个片子，里面那个女的最后跳海了", "borrower"),
    ("报警？跟警察那些都扯不上关系，您放心", "collector"),
    ("轻生？我从来没想过", "borrower"),                                # the collector's word asked back, then denied
    ("农药？我才不碰那东西", "borrower"),
    ("莫得人要去你屋头，你莫怕", "collector"),                        # Sichuan 莫得人, nobody
    ("我哪敢说您是老赖", "collector"),
    ("孩子的事要紧，我们下周再联系", "collector"),
    ("以前是想过跳楼，现在不会了", "borrower"),
    ("新闻里有个小伙子被逼得跳楼了", "borrower"),
    ("失信被执行人是法院判决以后才会有的，您还远着呢", "collector"), # the blacklist explained, not threatened
    ("逾期记录和案底是两回事", "collector"),
    ("我哪会去跳楼啊", "borrower"),
    ("哪会找你爸妈啊，这是你自己的账", "collector"),
    ("轻生这种事我想都没想过", "borrower"),
    ("阿拉勿会寻死个", "borrower"),                                    # Wu: 勿会, will not
    ("什么想死不想死的，我活得好好的", "borrower"),
    ("村里有个老头喝农药走了", "borrower"),
    ("有人自称警察让您转账，那是骗子，别上当", "collector"),          # an impostor warned of
    ("外访只会在您同意以后预约见面", "collector"),
    ("坐牢？哪会啊，这是民事纠纷", "collector"),                      # an echo answered 哪会
    ("爆通讯录这种事是明令禁止的", "collector"),
    ("我们公司明令禁止联系借款人的亲友", "collector"),
    ("有人冒充我们说要通知你单位，千万别信", "collector"),
    ("老赖这个词我们是不能用的", "collector"),
    ("我用不着去死，大不了从头再来", "borrower"),
    ("你问我是不是想不开？不存在的", "borrower"),
    ("我表哥被网贷逼得喝了农药", "borrower"),                          # someone else's act, told
    ("打游戏又被对面虐死了", "borrower"),
    ("没人要让你坐牢，咱们慢慢谈", "collector"),                      # 没人要(让你)坐牢
    ("俺们不会去恁家门口堵人", "collector"),
    ("老子才不得去寻短见，要死也是你们先死", "borrower"),
    ("以前是想过死，但那都过去了", "borrower"),
    ("那段时间想过一了百了，现在好多了，真的不会了", "borrower"),
    ("我看看什么时间给您打电话方便，您在单位吗", "collector"),        # 时间给 is not 讲给 by sound
    ("报警？谁跟你说我们要报警了？", "collector"),
    ("我说的是您自己来营业厅，不是我们派人去您家", "collector"),
    ("坐牢是不可能的，欠钱是民事纠纷", "collector"),
    ("去你家堵你这种事，我干了十几年一次都没干过", "collector"),
    ("我就是把逾期的后果跟你讲清楚", "collector"),
    ("有人声称能帮你征信修复，那都是骗子", "collector"),
    ("实在扛不住了就跟身边的人说说", "collector"),                      # advice to talk to one's own people
    ("寻死觅活那是电视剧里头的", "borrower"),
    ("别老问我有没有想不开，搞得跟我要寻短见似的", "borrower"),
    ("以前有过不想活的念头，现在早就过去了", "borrower"),
    ("我这腰疼得要死，老毛病了", "borrower"),
    ("要是我们真去您单位闹，那我这份工作也别干了", "collector"),     # a hypothetical ruled out
    ("催收会打爆通讯录，这些我们都是不做的，属于违规操作", "collector"),
    ("我说的“处理”是指系统里的账务处理", "collector"),                # a word in quotes explained
    ("想不开？莫得的事", "borrower"),
    ("农药？俺早就不碰了", "borrower"),
    ("同事说要让您坐牢，那是他说错了，这个话我们收回", "collector"),
    ("你以为我会去找你们辅导员？", "collector"),
    ("你们公司是不是不想活了", "borrower"),                            # said of the company
    ("我刚从楼上下去取快递", "borrower"),
    ("要是我真想死，还跟你磨叽啥？我好着呢", "borrower"),
    ("咱也不整那些发朋友圈、给亲戚打电话的事儿，有啥困难你直说", "collector"),
    ("上次打过去是您同事接的，他说您调岗了", "collector"),                # who answered, not who will be told
    ("警察不会因为信用卡逾期就上门抓人，您别自己吓自己", "collector"),
    ("您说的那个要您报警的骗子跟我们没关系，我们的官方电话是95开头的", "collector"),
    ("我刚才那个同事说要去找您家人，那话说得不妥当，我们绝对不会那样做", "collector"),
    ("您如果心里压力很大，可以打心理援助热线，我们也不希望您出什么事", "collector"),
    ("我以前是想过死，但那是去年的事了，现在早走出来了", "borrower"),
    ("你骂谁是老赖呢？我已经打热线投诉你了，你等着被开除吧", "borrower"),  # the collector's job, not hers
    ("您紧急联系人那边我们不会打的，紧急联系人只是联系不上本人的时候才用", "collector"),
    ("这个减免方案需要领导审批，审批下来我第一时间通知您", "collector"),
    ("我上次跟你们说我妈住院，其实没有住院，是我编的", "borrower"),
    ("哎呀，今天这个会开得我想死，领导讲了三个小时", "borrower"),
    ("我刚才说的那个是气话，我没有真想死，就是被你们电话打得太烦了", "borrower"),
    ("我在医院呢，不是我生病，是陪我老婆来产检", "borrower"),
    ("我没有说我病了，我说的是我老婆怀孕了", "borrower"),
    ("房子没被淹，我们这边水没涨上来，就是停了两天电，现在恢复了", "borrower"),
    ("我没说我活不下去，我说的是这个利息高得让人活不下去，是夸张", "borrower"),
    ("住院？没有啊，我好好的，谁跟你们说我住院了？", "borrower"),
    ("我老公他们单位这两年效益不好，好多人被裁了，还好他没事", "borrower"),
    ("我也是当妈的，知道一个人带孩子有多难，别把自己逼得太紧", "collector"),
    ("警察不会来找你的，单纯逾期不算犯罪", "collector"),
    ("您刚才说您同事也在我们平台借过款，那个跟您的账户没关系", "collector"),
    ("我没有要喝农药，那瓶农药是打地里的虫的", "borrower"),
    ("住院的不是我，是我朋友，我去看看他而已", "borrower"),
    ("不坐牢，不留案底，逾期只是影响征信", "collector"),
    ("我小时候也以为警察叔叔会抓不还钱的人，后来才知道根本不是这么回事", "collector"),
    ("放心吧，遗书什么的不存在的，我就是发个牢骚", "borrower"),
    ("我那句“想紫砂”是网上的梗，不是真的，你们别紧张", "borrower"),
    ("农药是给果树打的，不是给我自己喝的，你别多想", "borrower"),
    ("庄稼没受灾，今年收成还行，卖了粮就还", "borrower"),
    ("没有什么案底的说法，也没有人会来抓您", "collector"),
    ("您家人的电话我们一个也不会打，您放心", "collector"),
    ("刚才说您是老赖，我收回，对不起", "collector"),
    ("你说你姐夫是警察，那也得按时还款", "collector"),
    ("我们外放的同事下午会给你打个电话确认一下", "collector"),     # 外访: the collector's own field staff
    ("强制执行是判决以后不履行才有的，现在还远没到那一步", "collector"),
    ("您爸妈那里我们没有联系过，您放心", "collector"),
    ("您先跟家人聊聊，看看怎么安排还款", "collector"),               # advice, not exposure
    ("我没那个寻死的念头，就是一时着急", "borrower"),
    ("跳楼这种事我从来没想过，我还有孩子", "borrower"),
    ("我说不想活了是被你们气的", "borrower"),
])
def test_negations_and_near_misses_are_not_flagged(text, role):
    found = flags.apply(flags.load(), [one_turn(text, role)], 4.0)
    assert not [f for f in found if f.category != "hardship"], found


@pytest.mark.parametrize(("text", "found"), [
    ("安眠药？我从来不碰那玩意儿", set()),
    ("活着有什么用？", {"self_harm"}),                                  # a question of the speaker's own, not an echo
    ("活着有什么用？不如死了算了", {"self_harm"}),
    ("自杀？对，我就是想死", {"self_harm"}),
    ("我明天去派出所换身份证，后天去银行还", set()),                  # 换身 of 换身份证 is not 换肾 misheard
    ("我唔系冇钱，系唔记得咗", set()),                                  # Cantonese 唔系, not
    ("我哪有生病啊，那是糊弄你们的", set()),
    ("前两年老公住院，现在都熬过来了，我也重新上班了", set()),
    ("我店没倒闭，生意挺好", set()),
    ("店是关了，但那是我自己不想干了", set()),
    ("我都想好了，把船开到海中间，一了百了", {"self_harm"}),             # 开到 is no 开刀
])
def test_an_echo_or_a_written_word_is_not_what_it_sounds_like(text, found):
    assert {f.category for f in flags.apply(flags.load(), [one_turn(text, "borrower")], 4.0)} == found


def test_traditional_characters_are_matched_and_quoted_as_written():
    """Turns from another recogniser may be in traditional characters; the words are matched in simplified ones."""
    found = flags.apply(flags.load(), [one_turn("你這種騙子，我們明天就去你單位找你領導。")], 4.0)
    assert {f.category for f in found} == {"insult", "third_party"}, found
    assert {f.evidence for f in found} == {"你這種騙子，", "我們明天就去你單位找你領導。"}


def test_the_mother_called_is_not_abuse():
    """The classifier hears abuse in 你妈; calling the borrower's mother is a third-party contact and no insult."""
    found = {f.category for f in flags.apply(flags.load(), [one_turn("我这就打你妈电话")], 4.0)}
    assert found == {"third_party"}


def test_a_wish_to_die_is_not_a_death_in_the_family():
    """去死 sounds like 去世 (a death, a hardship) on the telephone pinyin match; 去世 is matched by its characters."""
    found = {flag.category for flag in flags.apply(flags.load(), [one_turn("我每天都在想怎么去死", "borrower")], 4.0)}
    assert found == {"self_harm"}


@pytest.mark.parametrize("text", [
    "去年我失业了半年，不过现在都好了，这个月按时还",   # 不过 is "but", not a negation, so 现在都好了 retracts
    "我跟你们说我妈住院了，其实不是，我今天就还",       # a hardship owned up to as made up
    "工资没拖欠，月底发了就还",
    "我去年住院花了不少钱，那阵子真的难，不过现在病好了，这周就还",   # taken back three clauses on
    "我老家发过洪水，不过钱照还",
    "我之前失业了，现在找到新工作了，月底还",
    "我妈住院那会儿你们帮过我，这次我按时还",
    "前年失业过半年，现在工作已经稳定了，月底就还",
    "上个月出了个车祸，不过保险全赔了，钱照样能还",
    "去年失业过，现在上班了，下周就还",
    "手头是紧了点，但问题不大，二十号前还",
    "上个月生意差了点，但这个月好了，钱一分不会少",
    "前两年失业过，现在找到工作了，月底还",
    "前年我妈住院那阵子很难，现在都过去了，这个月照常还",
    "我做完手术恢复得挺好，下周就还",
    "去年被裁员了，结果新工作比以前还好，月底还",
    "我家里人都好好的，没谁生病",
])
def test_a_hardship_that_is_over_is_not_flagged(text):
    found = flags.apply(flags.load(), [one_turn(text, "borrower")], 4.0)
    assert not found, found


@pytest.mark.parametrize(("text", "found"), [
    ("同学的爸爸查出肝癌了，我们几个凑钱捐了点", set()),
    ("隔壁老王家的猪得瘟病全死了，可怜得很", set()),
    ("电视剧里的女主角吞了安眠药", set()),
    ("我朋友借了我的钱跑路了，我现在一分都没有", {"hardship"}),     # 我 after the friend: the borrower's loss
    ("我同事都知道我不想活了", {"self_harm"}),
    # the other person named in an earlier clause of the sentence
    ("我邻居家那个小伙子，欠了好几个网贷，前两天从楼上跳下去了", set()),
    ("这部电视剧里那个女主角，也是欠了高利贷，最后被逼得跳河", set()),
    ("我隔壁的王阿姨，儿子去年出车祸没了，她一个人天天哭", set()),
    ("我朋友跟我说她欠了钱以后想过吃安眠药", set()),                  # 我 as the one told
    ("我昨天看了一个纪录片，里面说很多人是因为债务压力才想不开", set()),
    ("我们村有户人家，去年大旱，庄稼全死了", set()),
    # someone the speaker gives or says something to is no story about them
    ("我把猫托付给朋友了，安眠药我攒了两瓶", {"self_harm"}),
    ("朋友那边也都道过别了，遗言也录好了", {"self_harm"}),
    ("我没被裁员，被裁的是我同事，我还在岗呢", set()),                # said of whom follows
    ("我做微商亏光了，还欠了朋友一屁股债，我已经把给爸妈的遗书写好了", {"self_harm", "hardship"}),
])
def test_a_story_about_someone_else_is_not_the_borrowers(text, found):
    assert {flag.category for flag in flags.apply(flags.load(), [one_turn(text, "borrower")], 4.0)} == found


def test_the_classifier_reading_a_story_about_someone_else_is_set_aside(models):
    """The classifier reads a hardship into a friend's rescue, where no listed word stands; someone else is the
    subject from the first clauses. A friend's sofa at the end of one's own account is no story about them."""
    turns = [one_turn("我朋友去年网贷逾期，后来真的想不开了，还好被救回来了。", "borrower"),
             one_turn("唉，你也别催了，说出来不怕你笑话，离了婚，房子归她，债归我，我现在睡的都是朋友家的沙发，哪有钱还。",
                      "borrower")]
    classify.annotate(turns, models.classifier)
    assert all(turn.acts["hardship"] >= 0.8 for turn in turns), [turn.acts for turn in turns]
    found = [{f.category for f in flags.apply(flags.load(), [turn], 4.0)} for turn in turns]
    assert found == [set(), {"hardship"}], found


@pytest.mark.parametrize(("role", "text", "found"), [
    ("borrower", "我不想再活下去了，还不还都无所谓了", {"self_harm"}),
    ("borrower", "我爸前年去逝了 就我一个人挣钱 实在还不上", {"hardship"}),  # 去世 as Whisper may write it, not 去死
    ("borrower", "我奶奶上个月去世了，这两天在老家办完事，账号再发我一下", set()),  # a death, and no word of money
    ("borrower", "以前有过轻生的念头，现在完全没这想法了，就想把钱还上", set()),
    ("collector", "律师函只是正常的法律文书，您收到后按上面的电话联系我们协商就行", set()),
    ("collector", "您爱人刚才打电话来问还款金额，按规定我们只能告诉本人，麻烦您自己回个电话", set()),
    ("collector", "您刚才骂我是骗子，我理解您着急，咱们还是说说怎么还", set()),   # the borrower's word, quoted
    ("collector", "是王磊的室友吧？帮我带句话，他欠债半年了，一直装死", {"third_party"}),
    ("collector", "是王磊的室友吧？帮我带句话，他就是个欠钱不还的无赖，躲得了初一躲不了十五", {"third_party", "insult"}),
    ("collector", "我会告诉你老板你是诈骗犯", {"threat", "third_party"}),
])
def test_rulebook_round_of_development_34(role, text, found):
    assert {flag.category for flag in flags.apply(flags.load(), [one_turn(text, role)], 4.0)} == found


@pytest.mark.parametrize(("role", "text", "found"), [
    # third_party.contact needs the third party and the contact in one sentence; a question runs on into the next
    ("collector", "您说您这周在单位加班，那我们就不打扰了。下周一我再打电话提醒您还款的事", set()),
    ("collector", "你老婆知道你借了网贷吗？我这就打给她", {"third_party"}),
    ("collector", "现在逾期罚息已经滚到了八千多，请您尽快处理", set()),
    ("collector", "再不还，我就去你朋友圈底下评论，说你欠钱不还", {"third_party"}),
    ("collector", "刚才我同事说您是老赖，那是他不对，我替他道歉", set()),
    ("borrower", "我不会跳河的，我没那么想不开，你们把账单发我", set()),
    ("borrower", "今年没遭灾，庄稼长得还不错，钱下周就还", set()),
    ("borrower", "老家房子拆迁，赔了一笔钱，正好还你们", set()),
])
def test_rulebook_round_of_development_35(role, text, found):
    assert {flag.category for flag in flags.apply(flags.load(), [one_turn(text, role)], 4.0)} == found


def test_a_retraction_does_not_reach_into_an_earlier_sentence():
    # 不会的 answers the question about a complaint; the hospital stay two sentences back still stands
    text = "我老婆住院了，家里一分钱都没有。你说我会去投诉？不会的，这周先还两百"
    found = flags.apply(flags.load(), [one_turn(text, "borrower")], 4.0)
    assert "hardship" in {f.category for f in found}, found


def test_a_kin_word_after_go_is_not_abuse():
    # 去你妈家 is a visit to the borrower's mother, not the curse 去你妈
    found = flags.apply(flags.load(), [one_turn("我们明天去你妈家坐坐，让她劝劝你", "collector")], 4.0)
    assert found and "insult" not in {f.category for f in found}, found


def test_a_word_inside_a_longer_word_of_another_list_is_that_word():
    # 儿子 in 龟儿子 is an insult, not the borrower's son; 上门 in 找上门 is the visit, not a contact verb
    found = flags.apply(flags.load(), [one_turn("你个龟儿子，等我们找上门来有你好受的")], 4.0)
    assert "insult" in {f.category for f in found} and "third_party" not in {f.category for f in found}


def test_people_sent_to_the_borrowers_workplace_are_a_threat_to_the_borrower():
    # the classifier hears a third-party threat; the visit is to deal with the borrower, so it is a threat only
    found = flags.apply(flags.load(), [one_turn("你信不信我叫几个兄弟去你工地跟你好好聊聊")], 4.0)
    assert {f.category for f in found} == {"threat"}, found


def test_a_none_condition_vetoes_the_rule():
    rulebook = flags.load()
    threat = one_turn("这个事情你自己想清楚")
    threat.acts = {"threat_legal": 0.95}
    offer = one_turn("报案回执可以作为我们这边申请停息的材料")
    offer.acts = {"threat_legal": 0.95}
    assert [f.rule for f in flags.apply(rulebook, [threat], 4.0)] == ["threat.legal_classifier"]
    assert flags.apply(rulebook, [offer], 4.0) == []


def test_privacy_needs_the_other_party_to_say_they_are_not_the_borrower():
    reading = one_turn("他的身份证号是三二零一零二一九八五零三一二四四一八", start=5.0)
    not_him = one_turn("喂，我不是他，我是他老婆", role="borrower", speaker="S2")
    him = one_turn("喂，是我", role="borrower", speaker="S2")
    assert [f.category for f in flags.apply(flags.load(), [not_him, reading], 9.0)] == ["privacy"]
    assert flags.apply(flags.load(), [him, reading], 9.0) == []


def test_call_hours_and_frequency_from_the_manifest(tmp_path):
    rows = ["path,call_id,borrower_id,started_at,direction"]
    rows += [f"a{i}.wav,a{i},B7,2026-11-20T{hour:02d}:05:00,outbound" for i, hour in enumerate((9, 11, 14, 22))]
    rows += ["b.wav,b,B8,2026-11-20T10:00:00,outbound"]
    for name in ("a0", "a1", "a2", "a3", "b"):
        (tmp_path / f"{name}.wav").write_bytes(b"")
    (tmp_path / "calls.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    jobs, missing = read_manifest(tmp_path / "calls.csv")
    assert len(jobs) == 5 and not missing
    count_calls_per_day(jobs, stored={("B8", "2026-11-20"): {"b", "b-earlier"}})  # the store had two calls to B8
    metadata = {job.call_id: job.metadata for job in jobs}
    assert metadata["a3"] == {"borrower_id": "B7", "started_at": "2026-11-20T22:05:00", "direction": "outbound",
                              "calls_to_borrower_that_day": 4}
    rulebook = flags.load()
    late = flags.apply(rulebook, [], 60.0, metadata["a3"])
    assert {f.rule for f in late} == {"harassment.hours", "harassment.frequency"}
    assert all(f.category == "harassment" and f.speaker is None for f in late)
    assert metadata["b"]["calls_to_borrower_that_day"] == 2  # b itself counted once
    assert flags.apply(rulebook, [], 60.0, metadata["b"]) == []


def test_editing_the_yaml_changes_the_outcome(sample_results, tmp_path):
    result = sample_results["call_02_abusive"]
    custom = tmp_path / "rules.yaml"
    custom.write_text(
        "extends: default\n"
        "version: site-1\n"
        "disable: [insult.abuse, insult.classifier]\n"
        "lexicons:\n"
        "  cannot_pay: [拿不出来]\n"
        "rules:\n"
        "  - id: site.grace_period\n"
        "    category: hardship\n"
        "    severity: low\n"
        "    roles: [borrower]\n"
        "    any:\n"
        "      - lexicon: cannot_pay\n", encoding="utf-8")
    rulebook = flags.load(custom)
    found = flags.apply(rulebook, result.turns, result.source.duration_s)
    assert "insult" not in {f.category for f in found}
    assert any(f.rule == "site.grace_period" and f.rule_version == "site-1" for f in found)
    assert {f.category for f in found} - {"insult"} == {f.category for f in result.flags} - {"insult"}


@pytest.mark.parametrize(("text", "where", "reason"), [
    ("rulebook: x\nversion: '1'\nrules: [\n", ":4:", "not valid YAML"),
    ("rulebook: x\nversion: '1'\nrules:\n  - id: a\n    category: threat\n    severity: high\n"
     "    any:\n      - lexicon: nowhere\n", ":8:", "no lexicon named `nowhere`"),
    ("rulebook: x\nversion: '1'\nrules:\n  - id: a\n    category: threats\n    severity: high\n"
     "    any:\n      - regex: 'x'\n", ":4:", "category must be one of"),
    ("rulebook: x\nversion: '1'\nrules:\n  - id: a\n    category: threat\n    severity: high\n"
     "    any:\n      - regex: '(unclosed'\n", ":8:", "bad regular expression"),
    ("rulebook: x\nrules:\n  - id: a\n    category: threat\n    severity: high\n    any:\n      - regex: x\n",
     ":1:", "`version` is missing"),
    ("rulebook: x\nversion: '1'\nrules:\n  - id: a\n    category: threat\n    severity: high\n"
     "    any:\n      - act: threat_legal\n        min: 2\n", ":8:", "probability"),
    ("rulebook: x\nversion: '1'\nexception: [跳楼价]\nrules:\n  - id: a\n    category: threat\n"
     "    severity: high\n    any:\n      - regex: x\n", ":1:", "unknown key(s) ['exception']"),
    ("rulebook: x\nversion: '1'\nexceptions: 跳楼价\nrules:\n  - id: a\n    category: threat\n"
     "    severity: high\n    any:\n      - regex: x\n", ":1:", "`exceptions` must be a list of words"),
    ("rulebook: x\nversion: '1'\nretractions: 是气话\nrules:\n  - id: a\n    category: threat\n"
     "    severity: high\n    any:\n      - regex: x\n", ":1:", "`retractions` must be a list of words"),
    ("rulebook: x\nversion: '1'\nrules:\n  - id: a\n    category: threat\n    severity: high\n"
     "    any:\n      - regex: x\n    none:\n      - lexicon: nowhere\n", ":10:", "no lexicon named `nowhere`"),
    ("rulebook: x\nversion: '1'\nrules:\n  - id: a\n    category: self_harm\n    severity: high\n"
     "    told_of_others: 朋友\n    any:\n      - regex: x\n", ":4:", "told_of_others must be a list of words"),
    ("rulebook: x\nversion: '1'\nrhetorical_denials: 谁说\nrules:\n  - id: a\n    category: threat\n"
     "    severity: high\n    any:\n      - regex: x\n", ":1:", "`rhetorical_denials` must be a list of words"),
    ("rulebook: x\nversion: '1'\nrules:\n  - id: a\n    category: threat\n    severity: high\n"
     "    together: clause\n    all:\n      - regex: x\n", ":4:", "together must be `sentence`"),
])
def test_a_malformed_rulebook_is_rejected_with_line_and_reason(tmp_path, text, where, reason):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(flags.RulebookError) as error:
        flags.load(path)
    assert f"{path}{where}" in str(error.value) and reason in str(error.value)


def test_no_call_is_analysed_with_a_broken_rulebook(tmp_path):
    bad = tmp_path / "bad.yaml"
    # the first rule is sound, the second is not: the run stops rather than flag with the first alone
    bad.write_text("rulebook: x\nversion: '1'\nrules:\n  - id: a\n    category: threat\n    severity: high\n"
                   "    any:\n      - regex: 坐牢\n  - id: b\n    category: threat\n    severity: high\n",
                   encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        main(["analyze", str(SAMPLES / "call_01_compliant.wav"), "--out", str(out), "--rules", str(bad), "-q"])
    assert "bad.yaml:9" in str(stop.value) and "needs conditions" in str(stop.value)
    assert not list(out.glob("*.json"))


def test_the_default_rulebook_ships_with_the_package():
    rulebook = flags.load()
    assert rulebook.name == "analyzer-default" and len(rulebook.rules) >= 10
    assert {rule.category for rule in rulebook.rules} == set(flags.CATEGORIES)
    assert json.dumps(rulebook.describe())
