"""A stand-in for the part of ``PreparedCache`` the SBI trainer reads: named people, one video each."""

from __future__ import annotations


class PeopleCache:
    """Subclasses set ``people`` and implement ``frames_of(k)`` for the k-th person's video."""

    people: list[str] = []

    def identities(self):
        return list(self.people)

    def videos_of(self, person):
        return [person + "_v"]

    def load(self, vid):
        return self.frames_of(self.people.index(vid[:-2]))
