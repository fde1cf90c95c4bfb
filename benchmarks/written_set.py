"""A written question set (issue 24 part 6): questions a demanding user asks about six documents
of different kinds, not drawn from SQuAD. Reported by ``python -m benchmarks.written``.

The documents: the default article (news, ``seeds/``) and ``tests/docs/``'s manual, board
minutes, library announcement, company policy and quarterly report. Every question and its
expected string were written from the documents alone, before the reader was run on them; do not
edit a question after seeing what the reader answers (add new ones instead).

Each item: ``doc`` (file name), ``kind``, ``q``, ``expect`` (a verbatim substring of the document
that a right answer's quote must contain; None for a near miss), ``history`` (the earlier turns,
``(question, answer text)``, for a follow-up). Kinds:

- ``plain``: asked much as the document words it;
- ``paraphrase``: other words than the text (synonyms, a verb for the text's noun, a country for
  its capital, an abbreviation written differently, another noun for the same event);
- ``typo``: misspelled words;
- ``followup``: leans on the previous turn ("it", "she", "that", "what about ...");
- ``near_miss``: on the document's topic and plausible, but the document does not say it; the
  reader should decline.
"""

from __future__ import annotations

NEWS = "kim-jong-un-party-congress.txt"
MANUAL = "manual.md"
MINUTES = "minutes.txt"
LIBRARY = "announcement.txt"
POLICY = "policy.md"
REPORT = "report.txt"

KINDS = ("plain", "paraphrase", "typo", "followup", "near_miss")


def _q(doc: str, kind: str, q: str, expect: str | None, history=()) -> dict:
    return {"doc": doc, "kind": kind, "q": q, "expect": expect, "history": list(history)}


QUESTIONS: list[dict] = [
    # ------------------------------------------------------------------ news (the default article)
    _q(NEWS, "plain", "In what year did North Korea pass its nuclear-state legislation?", "2022"),
    _q(NEWS, "plain", "How many troops were in the Wednesday night military parade?", "14,000"),
    _q(NEWS, "plain", "What is the name of Kim Jong Un's daughter?", "Kim Ju Ae"),
    _q(NEWS, "plain", "When did the Workers' Party last hold a congress before this one?", "2021"),
    _q(NEWS, "plain", "When did Trump and Kim last meet?", "since 2019"),
    _q(
        NEWS,
        "plain",
        "What did Kim call Washington's aim for denuclearization last September?",
        "delusional obsession",
    ),
    _q(NEWS, "plain", "Which leaders stood alongside Kim at the parade in Beijing?", "Putin"),
    _q(
        NEWS,
        "plain",
        "What did Trump say happened between him and Kim during his first term?",
        "fell in love",
    ),
    _q(NEWS, "plain", "From where did Kim deliver his speech at the parade?", "Kim Il Sung Square"),
    _q(NEWS, "plain", "Who wrote the article?", "Dasl Yoon"),
    _q(NEWS, "plain", "What did the party congress establish?", "five-year plans"),
    _q(
        NEWS,
        "plain",
        "How long has it been since North Korea held formal nuclear talks with the U.S.?",
        "more than six years",
    ),
    _q(NEWS, "plain", "How has Trump referred to North Korea?", "sort of a nuclear power"),
    _q(NEWS, "paraphrase", "How old is the North Korean leader?", "42-year-old"),
    _q(
        NEWS,
        "paraphrase",
        "Which country's intelligence service thinks Kim's daughter could succeed him?",
        "South Korea’s spy agency",
    ),
    _q(
        NEWS,
        "paraphrase",
        "Which countries have stopped new sanctions on North Korea?",
        "Beijing and Moscow",
    ),
    _q(
        NEWS,
        "paraphrase",
        "Did Kim name the American president in his speech?",
        "didn’t mention Trump by name",
    ),
    _q(
        NEWS,
        "paraphrase",
        "What does Kim want the US to recognise North Korea as?",
        "nuclear state",
    ),
    _q(
        NEWS,
        "paraphrase",
        "In which country was the parade where Kim appeared with Putin and Xi?",
        "military parade in Beijing",
    ),
    _q(
        NEWS, "paraphrase", "How often does the Workers' Party hold its congress?", "twice-a-decade"
    ),
    _q(NEWS, "typo", "How many troups marched in the paradee?", "14,000"),
    _q(NEWS, "typo", "Whats the name of Kims dauhgter?", "Kim Ju Ae"),
    _q(
        NEWS,
        "followup",
        "Did Kim respond to his offer then?",
        "ignored an offer to reconnect",
        [
            (
                "When did Trump visit South Korea?",
                "“The two leaders haven’t met since 2019, and the North Korean leader ignored an"
                " offer to reconnect when Trump visited South Korea last fall.” [1]",
            )
        ],
    ),
    _q(
        NEWS,
        "followup",
        "Where did Kim speak during it?",
        "Kim Il Sung Square",
        [
            (
                "How many troops were in the Wednesday night parade?",
                "“A Wednesday night military parade featured more than 14,000 troops, though not"
                " the typical procession of large-scale weapons.” [1]",
            )
        ],
    ),
    _q(NEWS, "near_miss", "What is the population of North Korea?", None),
    _q(NEWS, "near_miss", "How old is Kim Ju Ae?", None),
    _q(NEWS, "near_miss", "How long did the party congress last?", None),
    _q(NEWS, "near_miss", "What did Xi Jinping say at the parade in Beijing?", None),
    _q(NEWS, "near_miss", "How many troops marched in the Beijing parade in September?", None),
    # ------------------------------------------------------------------ manual
    _q(MANUAL, "plain", "How far from the wall should the machine be placed?", "10 cm"),
    _q(MANUAL, "plain", "How long should a double shot take?", "25 to 30 seconds"),
    _q(MANUAL, "plain", "To what temperature should I steam the milk?", "60 degrees Celsius"),
    _q(MANUAL, "plain", "How often should I replace the water filter cartridge?", "every 60 days"),
    _q(
        MANUAL,
        "plain",
        "What is the email address of Aurora Support?",
        "support@aurora-coffee.example",
    ),
    _q(MANUAL, "paraphrase", "How hard should I press down on the ground coffee?", "15 kilograms"),
    _q(MANUAL, "paraphrase", "Which cartridge batches can I still use?", "batch 2 and batch 4"),
    _q(
        MANUAL,
        "paraphrase",
        "How often do I need to remove limescale if my tap water is hard?",
        "every six weeks",
    ),
    _q(
        MANUAL,
        "paraphrase",
        "Will Aurora repair my machine for free if limescale damaged it?",
        "does not cover damage caused by limescale",
    ),
    _q(MANUAL, "typo", "How meny grams of espreso does a double shot yeild?", "36 grams"),
    _q(
        MANUAL,
        "followup",
        "And what should I use for it?",
        "Aurora descaling solution",
        [
            (
                "How often should I descale the machine?",
                "“Descale the machine every three months with the Aurora descaling solution; in"
                " hard water areas, descale every six weeks.” [1]",
            )
        ],
    ),
    _q(
        MANUAL,
        "followup",
        "How do I make a claim under it?",
        "contact Aurora Support",
        [
            (
                "How long is the warranty?",
                "“The Aurora X2 comes with a two-year warranty covering parts and labour.” [1]",
            )
        ],
    ),
    _q(MANUAL, "near_miss", "How much does a replacement water filter cartridge cost?", None),
    _q(MANUAL, "near_miss", "What is the pump pressure of the Aurora X2 in bar?", None),
    _q(MANUAL, "near_miss", "How long does it take to steam the milk?", None),
    _q(MANUAL, "near_miss", "How much does it cost to extend the warranty?", None),
    # ------------------------------------------------------------------ minutes
    _q(MINUTES, "plain", "Who was absent from the board meeting?", "Sarah Okafor"),
    _q(MINUTES, "plain", "What time did the meeting open?", "7:05 pm"),
    _q(MINUTES, "plain", "How much did membership fees bring in this year?", "1,900 euros"),
    _q(
        MINUTES,
        "plain",
        "Who will coordinate the volunteers on planting day?",
        "Aisha Khan will coordinate",
    ),
    _q(
        MINUTES,
        "paraphrase",
        "How much did the board agree to spend on collecting rainwater?",
        "600 euros",
    ),
    _q(MINUTES, "paraphrase", "What sort of lock is the shed getting now?", "combination lock"),
    _q(
        MINUTES,
        "paraphrase",
        "Who is providing young plants for the planting day?",
        "Li Wei offered",
    ),
    _q(MINUTES, "paraphrase", "When did the meeting end?", "8:40 pm"),
    _q(MINUTES, "typo", "Who is the secratary of the gardn board?", "Aisha Khan (secretary)"),
    _q(MINUTES, "typo", "When was the lok on the tool shed brokn?", "January"),
    _q(
        MINUTES,
        "followup",
        "Will she run for chair again?",
        "will not run for chair again",
        [
            (
                "Who opened the meeting?",
                "“Maria Lopez opened the meeting at 7:05 pm and welcomed Peter Novak as a new"
                " board member.” [1]",
            )
        ],
    ),
    _q(MINUTES, "near_miss", "How much did the new combination lock cost?", None),
    _q(MINUTES, "near_miss", "On what date in June is the annual meeting?", None),
    _q(MINUTES, "near_miss", "How many members does the community garden have?", None),
    # ------------------------------------------------------------------ announcement
    _q(LIBRARY, "plain", "On which street is the Eastgate branch?", "Harbour Street"),
    _q(LIBRARY, "plain", "How many public computers does the new branch have?", "twelve"),
    _q(LIBRARY, "plain", "How much of the building work did the city pay?", "2.5 million"),
    _q(LIBRARY, "plain", "Is the Eastgate branch open on Sundays?", "closed on Sundays"),
    _q(LIBRARY, "paraphrase", "How many people will work at the new library?", "staff of nine"),
    _q(
        LIBRARY,
        "paraphrase",
        "What used to be in the building where the new library is?",
        "tram depot",
    ),
    _q(
        LIBRARY,
        "paraphrase",
        "Do people who live in the city have to pay for a library card?",
        "free for residents",
    ),
    _q(LIBRARY, "typo", "Wat time does the libary close on weekdays?", "8 pm on weekdays"),
    _q(
        LIBRARY,
        "followup",
        "Where is it located?",
        "Harbour Street",
        [
            (
                "When does the Eastgate branch open?",
                "“Northwind Public Library will open its new Eastgate branch on Monday, 1 June"
                " 2026.” [1]",
            )
        ],
    ),
    _q(LIBRARY, "near_miss", "How many books will the children's reading room hold?", None),
    _q(
        LIBRARY,
        "near_miss",
        "What is the name of the private foundation that paid for the building work?",
        None,
    ),
    _q(LIBRARY, "near_miss", "What are the opening hours of Northwind's central library?", None),
    _q(LIBRARY, "near_miss", "How much is the fine for returning a book late?", None),
    # ------------------------------------------------------------------ policy
    _q(POLICY, "plain", "How many days a week can employees work remotely?", "three days a week"),
    _q(POLICY, "plain", "What are the core hours?", "10:00 to 15:00"),
    _q(POLICY, "plain", "How much is the home office allowance?", "400 euros"),
    _q(POLICY, "plain", "What is the daily meal allowance?", "45 euros"),
    _q(POLICY, "plain", "How long are recordings of video calls kept?", "30 days"),
    _q(POLICY, "plain", "Who owns this policy?", "Daniel Moreau"),
    _q(POLICY, "plain", "When does the policy take effect?", "1 September 2025"),
    _q(POLICY, "plain", "Within how many days must expense claims be submitted?", "60 days"),
    _q(POLICY, "paraphrase", "How much can I spend on a hotel room in London?", "220 euros"),
    _q(POLICY, "paraphrase", "Do I need permission to travel by plane?", "approval of a director"),
    _q(POLICY, "paraphrase", "For how long can I work abroad each year?", "20 working days"),
    _q(
        POLICY,
        "paraphrase",
        "What happens to my laptop when I leave the company?",
        "returned within 10 working days",
    ),
    _q(
        POLICY,
        "paraphrase",
        "How long do you keep the details of rejected candidates?",
        "deleted after six months",
    ),
    _q(POLICY, "typo", "How much is the monthy internt allowance?", "30 euros"),
    _q(POLICY, "typo", "How long are custmer project files kept befor deletion?", "24 months"),
    _q(
        POLICY,
        "followup",
        "What about meals?",
        "45 euros",
        [
            (
                "How much is the hotel limit per night?",
                "“Hotel costs are reimbursed up to 150 euros a night, or 220 euros a night in"
                " Paris, London and Amsterdam.” [1]",
            )
        ],
    ),
    _q(
        POLICY,
        "followup",
        "Who currently has that job?",
        "Daniel Moreau",
        [
            (
                "Who approves working from another country for longer?",
                "“Working from another country is allowed for up to 20 working days per calendar"
                " year; longer stays need written approval from the Head of People Operations,"
                " because of tax and social security rules.” [1]",
            )
        ],
    ),
    _q(POLICY, "near_miss", "How many days of annual leave do employees get?", None),
    _q(POLICY, "near_miss", "What is the mileage rate for using my own car?", None),
    _q(POLICY, "near_miss", "How long are emails kept?", None),
    _q(POLICY, "near_miss", "What is the reimbursement limit for taxis?", None),
    # ------------------------------------------------------------------ report
    _q(
        REPORT,
        "plain",
        "How many households did the food bank serve in the third quarter?",
        "3,420 households",
    ),
    _q(REPORT, "plain", "How much food was distributed this quarter?", "61 tonnes"),
    _q(REPORT, "plain", "How many volunteers helped this quarter?", "212 volunteers"),
    _q(REPORT, "plain", "When does the lease on the warehouse end?", "March 2026"),
    _q(REPORT, "plain", "Who prepared the quarterly report?", "Prepared by Nadia Petrova"),
    _q(REPORT, "plain", "How much did the school harvest drive collect?", "7.5 tonnes"),
    _q(REPORT, "paraphrase", "Who paid for the new refrigerated van?", "Coastal Trust"),
    _q(REPORT, "paraphrase", "How much money did people give in the quarter?", "48,300 euros"),
    _q(
        REPORT,
        "paraphrase",
        "Why were donations lower than in the previous quarter?",
        "annual dinner moved",
    ),
    _q(REPORT, "paraphrase", "How much food spoiled when the cold room failed?", "400 kilograms"),
    _q(REPORT, "paraphrase", "Since when had the food bank been renting a van?", "last fall"),
    _q(REPORT, "paraphrase", "Who was hired to run the warehouse?", "Jonas Berg"),
    _q(REPORT, "typo", "How many volunter hours were given in the quater?", "5,860 hours"),
    _q(REPORT, "typo", "When will the trustes decide on the leese extension?", "20 November"),
    _q(
        REPORT,
        "followup",
        "How much does it save each month?",
        "900 euros",
        [
            (
                "When did the second refrigerated van arrive?",
                "“The second refrigerated van, bought with a grant from the Coastal Trust, arrived"
                " in August.” [1]",
            )
        ],
    ),
    _q(
        REPORT,
        "followup",
        "What is she negotiating?",
        "five-year extension",
        [
            (
                "Who prepared the report?",
                "“Prepared by Nadia Petrova, operations manager, for the trustees” [1]",
            )
        ],
    ),
    _q(
        REPORT,
        "near_miss",
        "How many households did the food bank serve in the fourth quarter?",
        None,
    ),
    _q(REPORT, "near_miss", "How much did the second refrigerated van cost?", None),
    _q(REPORT, "near_miss", "What will the new rent for the Mill Road warehouse be?", None),
    _q(REPORT, "near_miss", "How much did the cold room repair cost?", None),
]
