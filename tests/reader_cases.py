"""Questions about the documents in ``tests/docs/`` (a manual, board minutes, an announcement),
written with the documents, before the reader was measured on them.

ANSWERABLE: (question, a string the quoted sentence(s) must contain).
NEAR_MISS: about a document's topic, but not stated in it: the reader should abstain.
"""

ANSWERABLE = [
    ("How much water does the tank hold?", "1.8 litres"),
    ("How long does the machine take to warm up?", "45 seconds"),
    ("How many grams of coffee do I need for a double shot?", "18 grams"),
    ("How often should I descale the machine?", "every three months"),
    ("Which batch of filter cartridges was recalled?", "Batch 3"),
    ("How long is the warranty?", "two-year warranty"),
    ("Who is the treasurer?", "Tom Becker"),
    ("What was the balance at the end of February?", "4,250 euros"),
    ("When is the spring planting day?", "18 April"),
    ("Who will install the new lock on the tool shed?", "Peter Novak"),
    ("When is the next board meeting?", "9 May 2026"),
    ("Who will succeed Maria Lopez as chair?", "Elections for the new chair"),
    ("When does the Eastgate branch open?", "1 June 2026"),
    ("How many books does the new branch have?", "22,000 books"),
    ("How much did the building work cost?", "3.2 million euros"),
    ("Who leads the staff of the new branch?", "Grace Adeyemi"),
    ("How much is a library card for visitors from outside the city?", "25 euros"),
    ("What are the opening hours on Saturdays?", "10 am to 4 pm"),
]

TYPOS = [
    ("How much watr does the tank hld?", "1.8 litres"),
    ("How many boks does the new brnach have?", "22,000 books"),
    ("Who will instal the new lokc on the tool shedd?", "Peter Novak"),
]

NEAR_MISS = [
    "How much does the Aurora X2 espresso machine cost?",
    "How many books will the Eastgate branch have in 2030?",
    "What was the balance at the end of March?",
    "Who was elected as the new chair?",
    "How much did the private foundation pay for the new tram line?",
    "What is the capital of Australia?",
]
