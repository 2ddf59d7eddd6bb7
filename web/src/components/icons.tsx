// A few drawn icons (no emoji: a machine without an emoji font would show boxes).
const common = { viewBox: '0 0 48 48', width: 64, height: 64, 'aria-hidden': true, className: 'icon' } as const;

export const CupIcon = () => (
  <svg {...common}>
    <path d="M10 14h24l-2.6 24.5a3 3 0 0 1-3 2.5H15.6a3 3 0 0 1-3-2.5z" fill="#fdf6ec" stroke="currentColor" strokeWidth="2.5" strokeLinejoin="round" />
    <path d="M12.3 24h19.4l-1.4 13.5H13.7z" fill="#d98e04" opacity=".85" />
    <path d="M34 18h3a5 5 0 0 1 0 10h-4" fill="none" stroke="currentColor" strokeWidth="2.5" />
    <path d="M18 4c-2 3 2 4 0 7M24 4c-2 3 2 4 0 7" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
  </svg>
);

export const CartIcon = () => (
  <svg {...common}>
    <path d="M4 8h5l4.8 22.4a2.5 2.5 0 0 0 2.4 2H36a2.5 2.5 0 0 0 2.4-1.8L43 15H11.5" fill="none" stroke="currentColor" strokeWidth="3" strokeLinecap="round" strokeLinejoin="round" />
    <circle cx="18" cy="40" r="3" fill="currentColor" />
    <circle cx="35" cy="40" r="3" fill="currentColor" />
  </svg>
);

export const CheckIcon = () => (
  <svg {...common}>
    <circle cx="24" cy="24" r="21" fill="#2f6b3a" />
    <path d="M14 24.5l7 7 13-14" fill="none" stroke="#fff" strokeWidth="4" strokeLinecap="round" strokeLinejoin="round" />
  </svg>
);
